/* placeholder: module runtime */
typedef int skiff_runtime_placeholder_t;
