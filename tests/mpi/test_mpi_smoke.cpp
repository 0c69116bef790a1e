// MPI smoke test, run on 3 ranks by ctest (label mpi): rank layout, node-local
// ranks, collectives, device binding, the MPI communicator's broadcast, the
// choice of data-parallel training's communicator, and the MPI check macro.
#include <gtest/gtest.h>
#include <mpi.h>

#include <memory>
#include <numeric>
#include <string>
#include <set>

#include "sensecf/core/check.h"
#include "sensecf/core/error.h"
#include "sensecf/core/strings.h"
#include "sensecf/dist/device.h"
#include "sensecf/dist/mpi_communicator.h"
#include "sensecf/dist/mpi_env.h"
#include "sensecf/dist/nccl_communicator.h"

namespace {
sensecf::dist::MpiEnv* g_mpi = nullptr;
}

TEST(MpiSmoke, RanksAreDistinctAndComplete) {
  const auto& mpi = *g_mpi;
  EXPECT_EQ(mpi.size(), 3) << "ctest starts this test on 3 ranks";
  std::vector<int> all(static_cast<std::size_t>(mpi.size()));
  int mine = mpi.rank();
  SENSECF_MPI_CHECK(MPI_Allgather(&mine, 1, MPI_INT, all.data(), 1, MPI_INT, mpi.world()));
  std::vector<int> expected(all.size());
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(all, expected);
}

TEST(MpiSmoke, LocalRanksOnOneNode) {
  const auto& mpi = *g_mpi;
  const auto hosts = mpi.all_hosts();
  ASSERT_EQ(hosts.size(), static_cast<std::size_t>(mpi.size()));
  const std::set<std::string> distinct(hosts.begin(), hosts.end());
  if (distinct.size() == 1) {  // single node: local == world layout
    EXPECT_EQ(mpi.local_size(), mpi.size());
    EXPECT_EQ(mpi.local_rank(), mpi.rank());
  }
  EXPECT_LT(mpi.local_rank(), mpi.local_size());
}

TEST(MpiSmoke, AllreduceAndBroadcast) {
  const auto& mpi = *g_mpi;
  double value = mpi.rank() + 1.0, sum = 0;
  SENSECF_MPI_CHECK(MPI_Allreduce(&value, &sum, 1, MPI_DOUBLE, MPI_SUM, mpi.world()));
  EXPECT_DOUBLE_EQ(sum, mpi.size() * (mpi.size() + 1) / 2.0);
  // Rank 0's config hash reaches everyone.
  std::string hash = mpi.rank() == 0 ? sensecf::fnv1a_hex("config") : std::string(16, '?');
  SENSECF_MPI_CHECK(MPI_Bcast(hash.data(), 16, MPI_CHAR, 0, mpi.world()));
  EXPECT_EQ(hash, sensecf::fnv1a_hex("config"));
}

TEST(MpiSmoke, DeviceBindingWithoutGpu) {
  const auto b = sensecf::dist::choose_device(g_mpi->local_rank(), g_mpi->local_size());
  if (b.n_visible == 0) {
    EXPECT_EQ(b.device, -1);
  } else {
    EXPECT_EQ(b.device, b.n_visible == 1 ? 0 : g_mpi->local_rank() % b.n_visible);
  }
  EXPECT_GE(b.cpu_threads, 1);
}

TEST(MpiSmoke, CommunicatorBroadcastsFromAnyRoot) {
  sensecf::dist::MpiCommunicator comm(g_mpi->world());
  for (int root = 0; root < comm.size(); ++root) {
    // 40 bytes with a NUL in the middle, as an ncclUniqueId may hold.
    std::string bytes(40, '?');
    if (comm.rank() == root) {
      for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 37 + static_cast<std::size_t>(root)) % 256);
    }
    comm.broadcast(bytes.data(), bytes.size(), root);
    for (std::size_t i = 0; i < bytes.size(); ++i)
      ASSERT_EQ(bytes[i], static_cast<char>((i * 37 + static_cast<std::size_t>(root)) % 256)) << "root " << root;
  }
  EXPECT_FALSE(comm.device_buffers());
  float x = 1;
  EXPECT_THROW(comm.all_reduce_sum_device(&x, 1), sensecf::Error);
}

// Data-parallel training's communicator: the host one on the CPU; on CUDA,
// "cuda" becomes each rank's own GPU, and NCCL is used where the build has it
// (on a machine without a GPU its start fails on every rank with a message
// naming the rank and the visible devices).
TEST(MpiSmoke, TrainingCommunicatorChoosesTransportAndDevice) {
  using sensecf::dist::training_communicator;
  auto cpu = training_communicator(std::make_unique<sensecf::dist::MpiCommunicator>(g_mpi->world()), "cpu",
                                   g_mpi->local_rank());
  EXPECT_EQ(cpu.device, "cpu");
  EXPECT_FALSE(cpu.comm->device_buffers());
  EXPECT_EQ(cpu.comm->size(), g_mpi->size());
  const int visible = sensecf::dist::cuda_device_count();
  if (visible > 0) GTEST_SKIP() << "a GPU is visible: the NCCL start is the gpu tests' business";
  if (!sensecf::dist::nccl_built()) {
    auto gpu = training_communicator(std::make_unique<sensecf::dist::MpiCommunicator>(g_mpi->world()), "cuda",
                                     g_mpi->local_rank());
    EXPECT_EQ(gpu.device, "cuda:0");
    EXPECT_FALSE(gpu.comm->device_buffers());
    return;
  }
  try {
    training_communicator(std::make_unique<sensecf::dist::MpiCommunicator>(g_mpi->world()), "cuda:1",
                          g_mpi->local_rank());
    FAIL() << "an NCCL communicator started without a GPU";
  } catch (const sensecf::Error& e) {
    const std::string want = "rank " + std::to_string(g_mpi->rank()) + ": NCCL needs CUDA device 1, but 0 CUDA "
                             "devices are visible";
    EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("CUDA_VISIBLE_DEVICES"), std::string::npos) << e.hint();
  }
}

TEST(MpiSmoke, CheckMacroReportsFailingCalls) {
  int bad_root = 99;  // outside the communicator
  try {
    SENSECF_MPI_CHECK(MPI_Bcast(&bad_root, 1, MPI_INT, bad_root, g_mpi->world()));
    FAIL() << "MPI_Bcast with an invalid root did not fail";
  } catch (const sensecf::Error& e) {
    EXPECT_NE(std::string(e.what()).find("MPI_Bcast"), std::string::npos) << e.what();
  }
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  sensecf::dist::MpiEnv mpi(&argc, &argv);
  g_mpi = &mpi;
  if (mpi.rank() != 0) {  // one report, from rank 0; failures still set every rank's exit code
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int rc = RUN_ALL_TESTS();
  int worst = 0;
  MPI_Allreduce(&rc, &worst, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return worst;
}
