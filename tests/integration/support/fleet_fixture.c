/* Implementation of fleet_fixture.h. */
#include "fleet_fixture.h"
#include "test_support.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fx_setup(fleet_fixture *f)
{
    memset(f, 0, sizeof *f);
    if (ts_tempdir(f->dir, sizeof f->dir) != 0)
        return -1;
    snprintf(f->keys, sizeof f->keys, "%s/keys", f->dir);
    snprintf(f->allow, sizeof f->allow, "%s/allow", f->dir);
    snprintf(f->log, sizeof f->log, "%s/coordinator.log", f->dir);
    const char *subs[] = {"", "/agents", "/clients", "/operators", "/telemetry"};
    mkdir(f->keys, 0700);
    for (size_t i = 0; i < 5; i++) {
        char p[400];
        snprintf(p, sizeof p, "%s%s", f->allow, subs[i]);
        if (mkdir(p, 0755) != 0)
            return -1;
    }
    int ports[3];
    for (int i = 0; i < 3; i++)
        if ((ports[i] = ts_free_port()) <= 0)
            return -1;
    snprintf(f->agents_ep, sizeof f->agents_ep, "tcp://127.0.0.1:%d", ports[0]);
    snprintf(f->clients_ep, sizeof f->clients_ep, "tcp://127.0.0.1:%d", ports[1]);
    snprintf(f->telemetry_ep, sizeof f->telemetry_ep, "tcp://127.0.0.1:%d", ports[2]);
    return fx_add_key(f, "coordinator", NULL, &f->coord_keys);
}

void fx_teardown(fleet_fixture *f)
{
    if (f->coord_pid > 0)
        ts_kill_wait(f->coord_pid, SIGTERM, 3000);
    f->coord_pid = 0;
    if (getenv("EDGEFLEET_KEEP_TEST_DIR"))
        fprintf(stderr, "kept %s\n", f->dir);
    else
        ts_rmtree(f->dir);
}

void fx_key_path(const fleet_fixture *f, const char *name, const char *ext, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s.%s", f->keys, name, ext);
}

int fx_add_key(fleet_fixture *f, const char *name, const char *sub, keys_pair *out)
{
    keys_pair kp;
    ef_errmsg em;
    if (keys_generate(f->keys, name, &kp, &em) != 0) {
        fprintf(stderr, "keys_generate %s: %s\n", name, em.msg);
        return -1;
    }
    if (out)
        *out = kp;
    if (!sub)
        return 0;
    char path[512];
    snprintf(path, sizeof path, "%s/%s/%s.pub", f->allow, sub, name);
    FILE *fp = fopen(path, "w");
    if (!fp)
        return -1;
    fprintf(fp, "%s\n", kp.public_z85);
    fclose(fp);
    return 0;
}

int fx_start_coordinator(fleet_fixture *f, int hb_ms, int liveness, int queue)
{
    char bin[512], key[512], hb[16], lv[16], q[16], grace[16];
    if (ts_bin_path("coordinator/edgefleet-coordinator", bin, sizeof bin) != 0)
        return -1;
    fx_key_path(f, "coordinator", "key", key, sizeof key);
    snprintf(hb, sizeof hb, "%d", hb_ms);
    snprintf(lv, sizeof lv, "%d", liveness);
    snprintf(q, sizeof q, "%d", queue);
    snprintf(grace, sizeof grace, "%d", f->orphan_grace_ms);
    char *argv[32] = {bin,
                      "--key",
                      key,
                      "--allow-dir",
                      f->allow,
                      "--agents-endpoint",
                      f->agents_ep,
                      "--clients-endpoint",
                      f->clients_ep,
                      "--telemetry-endpoint",
                      f->telemetry_ep,
                      "--heartbeat-ms",
                      hb,
                      "--liveness",
                      lv,
                      "--queue",
                      q,
                      "--log-level",
                      "debug",
                      f->orphan_grace_ms > 0 ? "--orphan-grace-ms" : NULL,
                      grace,
                      NULL};
    size_t n = 0;
    while (argv[n])
        n++;
    for (size_t i = 0; i < 8 && f->extra[i] && n < 30; i++)
        argv[n++] = (char *)f->extra[i];
    argv[n] = NULL;
    /* Count the "listening" lines already in the log: a restart appends a new one. */
    int before = 0;
    FILE *fp = fopen(f->log, "r");
    if (fp) {
        char line[4096];
        while (fgets(line, sizeof line, fp))
            before += strstr(line, "INFO coordinator: listening") != NULL;
        fclose(fp);
    }
    f->coord_pid = ts_spawn(argv, f->log);
    if (f->coord_pid <= 0)
        return -1;
    for (int waited = 0; waited < 5000; waited += 20) {
        int seen = 0;
        fp = fopen(f->log, "r");
        if (fp) {
            char line[4096];
            while (fgets(line, sizeof line, fp))
                seen += strstr(line, "INFO coordinator: listening") != NULL;
            fclose(fp);
        }
        if (seen > before)
            return 0;
        ts_sleep_ms(20);
    }
    return -1;
}

int fx_stop_coordinator(fleet_fixture *f)
{
    int st = ts_kill_wait(f->coord_pid, SIGTERM, 5000);
    f->coord_pid = 0;
    return st;
}

ef_client_t *fx_client(const fleet_fixture *f, const char *name, uint32_t request_timeout_ms)
{
    char key[512];
    fx_key_path(f, name, "key", key, sizeof key);
    ef_client_params p = ef_client_default_params();
    p.endpoint = f->clients_ep;
    p.server_public_key = f->coord_keys.public_z85;
    p.key_file = key;
    p.connect_timeout_ms = 3000;
    p.request_timeout_ms = request_timeout_ms;
    return ef_client_new(&p);
}

int fx_wait_agents(const fleet_fixture *f, const char *op, size_t n, int timeout_ms)
{
    ef_client_t *c = fx_client(f, op, 2000);
    if (!c)
        return -1;
    int seen = -1;
    for (int waited = 0; waited <= timeout_ms; waited += 50) {
        ef_fleet_status *st = NULL;
        if (ef_client_status(c, &st) == 0) {
            seen = (int)st->n_agents;
            ef_fleet_status_free(&st);
            if ((size_t)seen == n)
                break;
        }
        ts_sleep_ms(50);
    }
    ef_client_destroy(&c);
    return seen;
}

int fx_busy_agent(const fleet_fixture *f, const char *op, const char *fmt)
{
    ef_client_t *c = fx_client(f, op, 3000);
    ef_fleet_status *st = NULL;
    int found = -1;
    if (c && ef_client_status(c, &st) == 0) {
        for (size_t i = 0; i < st->n_agents && found < 0; i++)
            if (st->agents[i].n_models && st->agents[i].models[0].busy_slots > 0 &&
                sscanf(st->agents[i].name, fmt, &found) != 1)
                found = -1;
        ef_fleet_status_free(&st);
    }
    ef_client_destroy(&c);
    return found;
}
