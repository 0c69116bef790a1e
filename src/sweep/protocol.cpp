// Coordinator <-> worker messages: JSON texts over MPI. See protocol.h.
#include "sensecf/sweep/protocol.h"

#include <algorithm>
#include <chrono>
#include <thread>

#include "sensecf/core/check.h"

namespace sensecf::sweep {
namespace {

// Receives the message a probe found.
Message receive_probed(MPI_Message* message, const MPI_Status& status) {
  int count = 0;
  SENSECF_MPI_CHECK(MPI_Get_count(&status, MPI_CHAR, &count));
  std::string text(static_cast<std::size_t>(count), '\0');
  SENSECF_MPI_CHECK(MPI_Mrecv(text.data(), count, MPI_CHAR, message, MPI_STATUS_IGNORE));
  return {status.MPI_SOURCE, status.MPI_TAG, text.empty() ? nlohmann::json::object() : nlohmann::json::parse(text)};
}

}  // namespace

nlohmann::json to_json(const TaskOrder& order) {
  return {{"key", order.key}, {"attempt", order.attempt}, {"gang", order.gang}, {"gang_id", order.gang_id}};
}

TaskOrder task_order_from_json(const nlohmann::json& j) {
  return {j.at("key").get<std::string>(), j.at("attempt").get<int>(), j.at("gang").get<std::vector<int>>(),
          j.at("gang_id").get<int>()};
}

nlohmann::json result_to_json(const JournalEntry& entry) {
  nlohmann::json j = {{"record", store::to_json(entry.record)}, {"output", store::to_json(entry.output)}};
  if (!entry.retryable) j["retryable"] = false;
  return j;
}

JournalEntry result_from_json(const nlohmann::json& j) {
  return {store::task_record_from_json(j.at("record")), store::task_output_from_json(j.at("output")),
          j.value("retryable", true)};
}

void send_json(const nlohmann::json& body, int dest, int tag) {
  const std::string text = body.dump();
  SENSECF_MPI_CHECK(MPI_Send(text.data(), static_cast<int>(text.size()), MPI_CHAR, dest, tag, MPI_COMM_WORLD));
}

std::optional<Message> try_receive(int source) {
  int found = 0;
  MPI_Message message;
  MPI_Status status;
  SENSECF_MPI_CHECK(MPI_Improbe(source, MPI_ANY_TAG, MPI_COMM_WORLD, &found, &message, &status));
  if (!found) return std::nullopt;
  return receive_probed(&message, status);
}

Message receive(int source) {
  MPI_Message message;
  MPI_Status status;
  SENSECF_MPI_CHECK(MPI_Mprobe(source, MPI_ANY_TAG, MPI_COMM_WORLD, &message, &status));
  return receive_probed(&message, status);
}

void Backoff::wait() {
  if (++idle_polls_ < 64) return;
  const auto us = std::min<long>(1000, 20L << std::min(6, (idle_polls_ - 64) / 16));
  std::this_thread::sleep_for(std::chrono::microseconds(us));
}

}  // namespace sensecf::sweep
