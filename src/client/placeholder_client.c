/* placeholder: module client */
typedef int skiff_client_placeholder_t;
