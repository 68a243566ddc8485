/* placeholder: module api */
typedef int skiff_api_placeholder_t;
