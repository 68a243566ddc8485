/* placeholder: module store */
typedef int skiff_store_placeholder_t;
