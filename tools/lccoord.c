/*
 * lccoord: the membership coordinator of one Laconic job, as a daemon.
 *
 *   LC_JOB_KEY=... lccoord [--listen HOST:PORT] [--job-id ID] [--peer-timeout-ms MS]
 *   lccoord --key-file PATH ...
 *
 * Ranks find it through LC_COORDINATOR=HOST:PORT. It decides the views of
 * the job's communicator (which ranks failed or left, when the survivors
 * move on) and settles the steps a lost rank left undecided; no data flows
 * through it. It keeps nothing on disk: restarted at the same address, it
 * takes the view over from the ranks as they reconnect. The key is read
 * from the environment or a file, never from the command line (ps shows it).
 * lcrun runs the same coordinator as a thread when it hosts the job.
 */
#include "laconic.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void lccoord_usage(FILE *f)
{
    fputs("usage: lccoord [options]\n"
          "  -l, --listen HOST:PORT    address to serve on (default 127.0.0.1:0: any free port)\n"
          "      --key-file PATH       read the job key from PATH (mode 0600); else LC_JOB_KEY\n"
          "      --job-id ID           the job's LC_JOB_ID (default: LC_JOB_ID, else laconic)\n"
          "      --peer-timeout-ms MS  silence that makes a rank failed (default 2000)\n"
          "  -h, --help                this text\n"
          "Prints 'lccoord: serving at HOST:PORT' and runs until SIGINT or SIGTERM.\n",
          f);
}

/* The key from a file only its owner can read (first line, no newline). */
static int lccoord_read_key(const char *path, char *key, size_t len)
{
    struct stat st;
    FILE *f = fopen(path, "r");

    if (f == NULL || fstat(fileno(f), &st) != 0) {
        fprintf(stderr, "lccoord: %s: %s\n", path, strerror(errno));
        if (f != NULL) fclose(f);
        return -1;
    }
    if (st.st_mode & 077) {
        fprintf(stderr, "lccoord: %s is readable by others (chmod 600 it)\n", path);
        fclose(f);
        return -1;
    }
    if (fgets(key, (int)len, f) == NULL) key[0] = '\0';
    fclose(f);
    key[strcspn(key, "\r\n")] = '\0';
    return key[0] != '\0' ? 0 : -1;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "listen", required_argument, NULL, 'l' },
        { "key-file", required_argument, NULL, 'K' },
        { "job-id", required_argument, NULL, 'j' },
        { "peer-timeout-ms", required_argument, NULL, 'p' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    lc_coord_params_t cp = { .field_mask =
                                 LC_COORD_PARAM_FIELD_JOB_KEY | LC_COORD_PARAM_FIELD_JOB_ID };
    char key[256], addr[64];
    const char *key_file = NULL;
    lc_coord_t *coord;
    sigset_t mask;
    int c, sig;

    cp.job_id = getenv("LC_JOB_ID") != NULL ? getenv("LC_JOB_ID") : "laconic";
    while ((c = getopt_long(argc, argv, "l:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'l':
            cp.field_mask |= LC_COORD_PARAM_FIELD_ADDRESS;
            cp.address = optarg;
            break;
        case 'K': key_file = optarg; break;
        case 'j': cp.job_id = optarg; break;
        case 'p':
            cp.field_mask |= LC_COORD_PARAM_FIELD_PEER_TIMEOUT_MS;
            cp.peer_timeout_ms = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'h': lccoord_usage(stdout); return 0;
        default: lccoord_usage(stderr); return 2;
        }
    }
    if (key_file != NULL) {
        if (lccoord_read_key(key_file, key, sizeof(key)) != 0) return 2;
        cp.job_key = key;
    } else {
        cp.job_key = getenv("LC_JOB_KEY");
    }
    if (cp.job_key == NULL || cp.job_key[0] == '\0') {
        fputs("lccoord: no job key (LC_JOB_KEY or --key-file)\n", stderr);
        return 2;
    }
    /* Signals are taken synchronously below, not by the coordinator's thread. */
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &mask, NULL);
    if (lc_coord_create(&cp, &coord) != LC_OK) {
        fputs("lccoord: cannot start (see the log above)\n", stderr);
        return 1;
    }
    lc_coord_address(coord, addr, sizeof(addr));
    printf("lccoord: serving at %s\n", addr);
    fflush(stdout);
    sigwait(&mask, &sig);
    lc_coord_destroy(coord);
    return 0;
}
