// The task kinds of sensecf, one accessor per file of src/sweep/kinds/; the
// registry (registry.cpp) lists them in plan order. Private to src/sweep/.
#pragma once

#include "sensecf/sweep/kind.h"

namespace sensecf::sweep::kinds {

const TaskKind& ingest_kind();     // ingest.cpp
const TaskKind& features_kind();   // ingest.cpp
const TaskKind& prepare_kind();    // prepare.cpp
const TaskKind& train_clf_kind();  // train_clf.cpp
const TaskKind& fig1_kind();       // fig1.cpp
const TaskKind& generate_kind();   // generate.cpp
const TaskKind& augment_kind();    // augment.cpp
const TaskKind& finetune_kind();   // finetune.cpp
const TaskKind& pretrain_lm_kind();  // pretrain_lm.cpp
const TaskKind& probe_kind();      // probe.cpp

}  // namespace sensecf::sweep::kinds
