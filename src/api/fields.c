/* The request fields each route accepts, in one place: the routes check
 * bodies against them and the request fuzzer drives the same lists. */
#include "api/api_internal.h"

#define LIST(name, ...)                                \
  static const vfield_t name##_list[] = {__VA_ARGS__}; \
  const vfields_t name = {name##_list,                 \
                          sizeof name##_list / sizeof name##_list[0]}

LIST(api_blobs_missing_fields, {"sha256", V_ARRAY, true, false});
LIST(api_calls_create_fields, {"kind", V_STRING, true, false},
     {"inputs", V_ARRAY, false, false}, {"call_id", V_STRING, false, false});
LIST(api_call_inputs_fields, {"inputs", V_ARRAY, true, false});
LIST(api_input_fields, {"idx", V_INT, true, false},
     {"args", V_STRING, true, false});
LIST(api_call_cancel_fields, {"terminate_containers", V_BOOL, false, false});
LIST(api_exchange_fields, {"outputs", V_ARRAY, false, false},
     {"want", V_INT, false, false}, {"wait", V_NUMBER, false, false});
LIST(api_output_fields, {"input_id", V_STRING, true, false},
     {"seq", V_INT, false, false}, {"status", V_STRING, true, false},
     {"data", V_STRING, false, true}, {"message", V_STRING, false, true},
     {"exception", V_STRING, false, true}, {"traceback", V_STRING, false, true},
     {"duration_us", V_INT, false, true});
LIST(api_app_rollback_fields, {"version", V_INT, false, false});
LIST(api_cls_bind_fields, {"params", V_OBJECT, false, false},
     {"options", V_OBJECT, false, false});
/* What with_options / with_concurrency / with_batching may change of a
 * class. */
LIST(api_cls_options_fields, {"cpu", V_NUMBER, false, false},
     {"cpu_limit", V_NUMBER, false, true}, {"memory", V_INT, false, false},
     {"memory_limit", V_INT, false, true}, {"timeout", V_NUMBER, false, false},
     {"retries", V_OBJECT, false, true},
     {"min_containers", V_INT, false, false},
     {"max_containers", V_INT, false, true},
     {"buffer_containers", V_INT, false, false},
     {"scaledown_window", V_NUMBER, false, false},
     {"startup_timeout", V_NUMBER, false, true},
     {"max_inputs", V_INT, false, false},
     {"target_inputs", V_INT, false, false}, {"env", V_OBJECT, false, false},
     {"gpu", V_INT, false, false}, {"gpu_type", V_STRING, false, true},
     {"batch_max_size", V_INT, false, false},
     {"batch_wait_ms", V_INT, false, false},
     {"secrets", V_ARRAY, false, false});
