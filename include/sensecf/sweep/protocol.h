// The messages between a sweep's coordinator (rank 0) and its workers, and how
// they travel: variable-size JSON texts (MPI_CHAR) on MPI_COMM_WORLD, received
// with MPI_Improbe/MPI_Mprobe + MPI_Mrecv so that no other receive can take a
// message that was probed. Nothing here decides what to send (scheduler.h,
// runner.cpp, worker.h do).
//
//   worker -> 0   kTagReady   {}                               first request for work
//   worker -> 0   kTagResult  {record, output}                 a finished attempt (store::to_json of the
//                                                              TaskRecord and TaskOutput); also asks for
//                                                              the next task
//   0 -> worker   kTagTask    {key, attempt, gang, gang_id}    run attempt `attempt` of task `key` together
//                                                              with the ranks in `gang` (one rank: alone);
//                                                              gang_id tags the gang's MPI_Comm_create_group
//   0 -> worker   kTagStop    {code}                           no more work: exit with `code` (signals.h)
//
// A worker sends kTagReady once, then one kTagResult per kTagTask it received,
// so the coordinator always knows which workers wait for work.
#pragma once

#include <mpi.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sensecf/sweep/journal.h"

namespace sensecf::sweep {

inline constexpr int kTagReady = 101;
inline constexpr int kTagResult = 102;
inline constexpr int kTagTask = 103;
inline constexpr int kTagStop = 104;

// The body of a kTagTask message.
struct TaskOrder {
  std::string key;        // Task::key
  int attempt = 1;        // 1-based, attempts of earlier runs included
  std::vector<int> gang;  // the world ranks that run this attempt together
  int gang_id = 0;        // tag of the gang's communicator; below 32767 (the smallest MPI_TAG_UB)
};

nlohmann::json to_json(const TaskOrder& order);
TaskOrder task_order_from_json(const nlohmann::json& j);

// The body of a kTagResult message.
nlohmann::json result_to_json(const JournalEntry& entry);
JournalEntry result_from_json(const nlohmann::json& j);

struct Message {
  int source = 0;
  int tag = 0;
  nlohmann::json body;  // an object ({} for an empty text)
};

void send_json(const nlohmann::json& body, int dest, int tag);
// The next message from `source` (a rank or MPI_ANY_SOURCE) if one has arrived.
std::optional<Message> try_receive(int source);
// Waits for the next message from `source`.
Message receive(int source);

// Polls for a message without spinning a core: a short busy phase, then sleeps
// that grow to 1 ms (the coordinator shares cores with workers).
class Backoff {
 public:
  void reset() { idle_polls_ = 0; }
  void wait();

 private:
  int idle_polls_ = 0;
};

}  // namespace sensecf::sweep
