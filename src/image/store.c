/* placeholder until the store lands */
#include "image/store.h"
