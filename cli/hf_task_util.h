// The task commands load model folders and rank scores through the task layer (tasks/common.h).
#pragma once

#include "perceiver/tasks/common.h"

namespace perceiver::cli {

using tasks::load_task_model;
using tasks::top_indices;

}  // namespace perceiver::cli
