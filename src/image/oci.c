/* placeholder until OCI import lands */
#include "image/oci.h"
