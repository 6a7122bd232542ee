/*
 * The chaos test (issue #6): many concurrent clients (libcurl multi) send
 * calls to the real poolhost binary for a bounded time; a configurable share
 * of them panic, crash, hang past their deadline or are cancelled, while the
 * host may also be killed from outside with SIGKILL at random moments.
 * Asserts that every request gets exactly one response with the status its
 * fault implies (500 for the call that caused a failure), that every
 * innocent call succeeds with the right result, that no file descriptor or
 * child process leaks, and that the service is ready at the end and exits
 * 0 on SIGTERM. A kill from outside cannot be pinned on any call: the calls
 * in flight then get 503 host-crashed with no culprit, and are counted
 * apart.
 *
 *   chaos [--seconds S] [--clients N] [--isolation process|thread]
 *         [--mix panic=P,crash=P,hang=P,cancel=P] [--kill-ms MS] [--seed N]
 *         [--attach SERVER_PID:PORT]
 *
 * Shares are percentages of calls; --kill-ms is the mean time between
 * external kills (0: none). The binary is $POOLHOST_BIN; with --attach the
 * run targets a service started elsewhere (the soak script) and leaves it
 * running. Exit 0 when every assertion holds.
 */
#include "chaos.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A thread-mode host abandoned with a parked or hung worker keeps its
 * socketpair, alert fd, wake-up pipe and per-worker memfds: 6 with the
 * 2 workers the server is started with; twice that as the bound. */
#define FDS_PER_ABANDONED_HOST 12

/* Picks the next call kind from the mix. */
static chaos_kind pick_kind(chaos_run *run) {
    int r = (int)(chaos_rand(run) % 100);
    for (int k = CHAOS_PANIC; k < CHAOS_NKINDS; k++) {
        if (r < run->opt.share[k])
            return (chaos_kind)k;
        r -= run->opt.share[k];
    }
    return CHAOS_OK;
}

/* Kills the current host with SIGKILL, after checking that the pid the
 * service reports is really its child. Returns whether it did (there is
 * no host while one restarts). */
static bool kill_host(chaos_run *run) {
    pid_t pid;
    long abandoned;
    chaos_pool_status(run, &pid, &abandoned);
    run->kill_attempts++;
    if (pid > 0 && test_proc_is_child(pid, run->server.pid) &&
        kill(pid, SIGKILL) == 0) {
        run->kills++;
        return true;
    }
    return false;
}

/* Runs the clients until the deadline, then lets the calls in flight
 * finish (each is bounded by its own curl timeout). */
static void run_clients(chaos_run *run) {
    double end = test_now_ms() + run->opt.seconds * 1000.0;
    double next_kill =
        run->opt.kill_ms > 0
            ? test_now_ms() + (double)(chaos_rand(run) % (2 * run->opt.kill_ms))
            : 0;
    for (int i = 0; i < run->opt.clients; i++)
        chaos_client_begin(run, &run->clients[i], pick_kind(run));
    int running, parked = 0;
    while (run->in_flight > 0 || parked > 0) {
        double now = test_now_ms();
        parked = 0;
        for (int i = 0; i < run->opt.clients; i++) {
            chaos_client *c = &run->clients[i];
            if (c->parked && now >= c->wake_at)
                chaos_client_resume(run, c);
            parked += c->parked;
        }
        if (next_kill > 0 && now >= next_kill && now < end) {
            /* No host to kill: try again soon rather than skip a turn. */
            next_kill = kill_host(run)
                            ? now + (double)(chaos_rand(run) %
                                             (2 * (unsigned)run->opt.kill_ms))
                            : now + 50;
        }
        curl_multi_perform(run->multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(run->multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            chaos_client *c = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&c);
            bool more = chaos_client_done(run, c, msg->data.result);
            if (!more && test_now_ms() < end)
                chaos_client_begin(run, c, pick_kind(run));
            parked += c->parked;
        }
        if (running > 0)
            curl_multi_poll(run->multi, NULL, 0, 10, NULL);
    }
}

/* Waits until cond(run) holds, up to ms; returns whether it did. */
static bool wait_for(chaos_run *run, bool (*cond)(chaos_run *), int ms) {
    double deadline = test_now_ms() + ms;
    do {
        if (cond(run))
            return true;
        usleep(50000);
    } while (test_now_ms() < deadline);
    return false;
}

static bool is_ready(chaos_run *run) {
    return chaos_get_status(run, "/readyz") == 200;
}

/* The leak check: the server's fds are back to the baseline, except for
 * what abandoned hosts (thread mode, by design) still hold. */
static bool fds_back(chaos_run *run) {
    pid_t pid;
    long abandoned;
    if (chaos_pool_status(run, &pid, &abandoned) != 0)
        return false;
    int fds = test_proc_fd_count(run->server.pid);
    run->fds_allowed = run->fds_before + FDS_PER_ABANDONED_HOST * abandoned;
    return fds >= 0 && fds <= run->fds_allowed;
}

static bool children_settled(chaos_run *run) {
    int zombies;
    int n = test_proc_children(run->server.pid, &zombies);
    return n == run->children_before && zombies == 0;
}

/* A call that succeeds, so that the host is up when counting. */
static bool warm_call(chaos_run *run) {
    run->warm_attempts++;
    run->warm_status = chaos_post_status(run, "/v1/calls",
                                         "{\"function\":\"sum_squares\","
                                         "\"args\":{\"n\":10}}");
    return run->warm_status == 200;
}

static int check_end(chaos_run *run) {
    int failures = 0;
    if (!wait_for(run, is_ready, 60000)) {
        fprintf(stderr, "FAIL: /readyz is not 200 after the run\n");
        failures++;
    }
    if (chaos_get_status(run, "/livez") != 200) {
        fprintf(stderr, "FAIL: /livez is not 200 after the run\n");
        failures++;
    }
    run->warm_attempts = 0;
    if (!wait_for(run, warm_call, 30000)) {
        fprintf(stderr,
                "FAIL: no successful call after the run: the last of %ld "
                "attempts answered %ld (0: no HTTP answer within 10 s)\n",
                run->warm_attempts, run->warm_status);
        failures++;
    }
    if (!wait_for(run, fds_back, 15000)) {
        fprintf(stderr,
                "FAIL: fd leak: %d open before, %d after (%ld allowed for "
                "abandoned hosts)\n",
                run->fds_before, test_proc_fd_count(run->server.pid),
                run->fds_allowed - run->fds_before);
        failures++;
    }
    if (!wait_for(run, children_settled, 15000)) {
        int zombies;
        int n = test_proc_children(run->server.pid, &zombies);
        fprintf(stderr,
                "FAIL: child processes: %d before, %d after (%d zombies)\n",
                run->children_before, n, zombies);
        failures++;
    }
    return failures;
}

static void print_summary(const chaos_run *run) {
    static const char *const names[CHAOS_NKINDS] = {"ok", "panic", "crash",
                                                    "hang", "cancel"};
    printf("chaos: %s isolation, %d clients, %d s, seed %u\n",
           run->opt.isolation, run->opt.clients, run->opt.seconds,
           run->opt.seed);
    for (int k = 0; k < CHAOS_NKINDS; k++)
        printf("  %-7s calls %6ld  as expected %6ld  wrong %ld\n", names[k],
               run->calls[k], run->right[k], run->calls[k] - run->right[k]);
    printf("  requests %ld, responses %ld, transport errors %ld, "
           "external kills %ld of %ld attempts (%ld calls in flight then "
           "answered 503, no culprit)\n",
           run->requests, run->responses, run->transport_errors, run->kills,
           run->kill_attempts, run->kill_victims);
}

int main(int argc, char **argv) {
    chaos_run run;
    if (chaos_parse_options(&run.opt, argc, argv) != 0)
        return 2;
    const char *bin = getenv("POOLHOST_BIN");
    if (!bin && !run.opt.attach_pid) {
        fprintf(stderr, "chaos: set POOLHOST_BIN to the poolhost binary\n");
        return 2;
    }
    if (chaos_run_init(&run) != 0)
        return 1;
    int rc = 1;
    if (chaos_server_start(&run, bin) != 0)
        goto out;
    if (!wait_for(&run, warm_call, 30000)) {
        fprintf(stderr,
                "FAIL: the first call did not succeed: %ld attempts, the "
                "last answered %ld (0: no HTTP answer within 10 s)\n",
                run.warm_attempts, run.warm_status);
        goto out_server;
    }
    /* Let the server close the side connection of the warm-up call. */
    usleep(300000);
    run.fds_before = test_proc_fd_count(run.server.pid);
    int zombies;
    run.children_before = test_proc_children(run.server.pid, &zombies);

    run_clients(&run);
    chaos_run_close_connections(&run);
    print_summary(&run);

    int failures = chaos_report_wrong(&run);
    if (run.responses != run.requests || run.transport_errors > 0) {
        fprintf(stderr,
                "FAIL: %ld requests, %ld responses, %ld transport "
                "errors\n",
                run.requests, run.responses, run.transport_errors);
        failures++;
    }
    failures += check_end(&run);
    if (!run.opt.attach_pid) {
        int status = test_server_stop(&run.server, 60000, true);
        if (status != 0) {
            fprintf(stderr, "FAIL: the service exited with %d on SIGTERM\n",
                    status);
            failures++;
        }
        if (failures)
            test_server_dump_log(&run.server, 30);
        else
            test_server_stop(&run.server, 0, false);
    }
    printf("chaos: %s\n", failures ? "FAILED" : "passed");
    rc = failures ? 1 : 0;
    goto out;
out_server:
    if (!run.opt.attach_pid) {
        test_server_dump_log(&run.server, 30);
        test_server_stop(&run.server, 30000, true);
    }
out:
    chaos_run_free(&run);
    return rc;
}
