/*
 * The status page's files, embedded in the binary at build time
 * (server/http/ui/embed.py writes the table from server/http/ui/).
 */
#ifndef SERVER_HTTP_UI_ASSETS_H
#define SERVER_HTTP_UI_ASSETS_H

#include <stddef.h>

typedef struct server_ui_asset {
    const char *name; /* "app.js": served at /ui/app.js */
    const char *type; /* its media type */
    const unsigned char *data;
    size_t len;
    const char *etag; /* quoted, for ETag and If-None-Match */
} server_ui_asset;

/* Every file, then an entry with a NULL name. */
extern const server_ui_asset server_ui_assets[];

#endif
