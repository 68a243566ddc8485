/* Runs the schedules (skiff.Period, skiff.Cron) of deployed apps. */
#include "control/control_internal.h"
#include "control/schedule.h"

void ctl_schedules_tick(control_t *c) { (void)c; }
