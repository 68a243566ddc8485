/* placeholder: module control */
typedef int skiff_control_placeholder_t;
