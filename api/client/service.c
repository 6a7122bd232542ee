/*
 * poolctl's service commands (poolctl.h): status (GET /v1/pool), functions,
 * restart and stop (admin, bearer token), and health (GET /readyz, quick
 * enough for a container HEALTHCHECK).
 */
#include "poolctl.h"

#include <string.h>

static const poolctl_timeouts service_timeouts = {5000, 30000};

/* GET path and hand the parsed 2xx body to print (unless --json). */
static int service__get(const poolctl_opts *o, const char *path,
                        void (*print)(const json_t *)) {
    poolctl_response r;
    json_t *doc = NULL;
    int ret;
    if (poolctl_http(o, "GET", path, NULL, NULL, service_timeouts, &r) < 0)
        ret = poolctl_transport_error(o, &r);
    else if ((ret = poolctl_expect_ok(o, &r, &doc)) == 0 && doc)
        print(doc);
    json_decref(doc);
    poolctl_response_free(&r);
    return ret;
}

int poolctl_cmd_status(const poolctl_opts *o) {
    return service__get(o, "/v1/pool", poolctl_print_status);
}

int poolctl_cmd_functions(const poolctl_opts *o) {
    return service__get(o, "/v1/functions", poolctl_print_functions);
}

int poolctl_cmd_admin(const poolctl_opts *o, const char *action) {
    char path[32];
    snprintf(path, sizeof path, "/v1/pool/%s", action);
    poolctl_response r;
    json_t *doc = NULL;
    int ret;
    if (poolctl_http(o, "POST", path, NULL, NULL, service_timeouts, &r) < 0) {
        ret = poolctl_transport_error(o, &r);
    } else if ((ret = poolctl_expect_ok(o, &r, &doc)) == 0 && !o->json) {
        const char *state = json_string_value(
            json_object_get(json_object_get(doc, "pool"), "state"));
        printf("%s: done%s%s\n", action, state ? ", pool " : "",
               state ? state : "");
    }
    json_decref(doc);
    poolctl_response_free(&r);
    return ret;
}

int poolctl_cmd_health(const poolctl_opts *o) {
    poolctl_response r;
    int ret;
    if (poolctl_http(o, "GET", "/readyz", NULL, NULL,
                     (poolctl_timeouts){2000, 5000}, &r) < 0) {
        ret = poolctl_transport_error(o, &r);
    } else {
        ret = r.status == 200 ? POOLCTL_EXIT_OK : POOLCTL_EXIT_UNAVAILABLE;
        if (o->json)
            puts(r.body ? r.body : "");
        else if (ret == POOLCTL_EXIT_OK)
            puts("ready");
        else
            fprintf(stderr, "not ready: HTTP %ld%s%.200s\n", r.status,
                    r.body && *r.body ? ": " : "", r.body ? r.body : "");
    }
    poolctl_response_free(&r);
    return ret;
}
