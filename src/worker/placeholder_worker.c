/* placeholder: module worker */
typedef int skiff_worker_placeholder_t;
