/* io/ckpt.c — HDF5 checkpoints written atomically (see ckpt.h). */
#include "io/ckpt.h"
#include "io/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/check.h"
#include "io/h5.h"

#define CODE_VERSION "jit-sla2 0.3"


/* A required integer attribute of a checkpoint. */
static uint64_t read_u64(hid_t f, const char *path, const char *name) {
    uint64_t v = 0;
    int r = h5_read_u64(f, name, &v);
    CHECK(r != 0, "%s: not a checkpoint of this framework (attribute '%s' missing)", path, name);
    CHECK(r == 1, "%s: attribute '%s' is not a single integer", path, name);
    return v;
}

/* A checkpoint write that failed (disk full, quota, I/O error): the partial
 * file is removed, and the message names it and the system's reason, which
 * HDF5's own error stack (silenced while saving) would bury in hundreds of
 * lines. The previous checkpoint and "latest" are untouched. */
static _Noreturn void ckpt_write_failed(const char *tmp, const char *what, int err) {
    unlink(tmp);
    FAIL("writing checkpoint %s failed (%s): %s%s; the previous checkpoint (if any) and \"latest\" are intact", tmp, what,
         err ? strerror(err) : "HDF5 error",
         err == ENOSPC || err == EDQUOT ? " (free space on the file system, or lower train.keep_last)" : "");
}

/* One dataset per parameter, in group g, from the flat buffer `base`. With
 * several ranks each writes rows [r*R/W, (r+1)*R/W) of every dataset in one
 * collective call: the ranks hold identical copies, so any split is right,
 * and the file system sees W writers. */
static void write_group(hid_t f, const char *tmp, const char *group, const ParamStore *ps, const float *base,
                        const Comm *comm) {
    errno = 0;
    hid_t g = H5Gcreate2(f, group, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) ckpt_write_failed(tmp, group, errno);
    int rank = comm ? comm->rank : 0, world = comm ? comm->world : 1;
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    if (world > 1) H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE);
    for (int i = 0; i < ps->n; i++) {
        const ParamInfo *p = &ps->info[i];
        hsize_t dims[TENSOR_MAX_DIMS], start[TENSOR_MAX_DIMS] = {0}, count[TENSOR_MAX_DIMS];
        for (int k = 0; k < p->ndim; k++) dims[k] = count[k] = (hsize_t)p->shape[k];
        hid_t sp = H5Screate_simple(p->ndim, dims, NULL);
        /* One chunk per tensor with a Fletcher-32 checksum, verified by HDF5
         * on every read: a flipped byte in a weight is an error at resume,
         * not a silently different model. */
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_chunk(dcpl, p->ndim, dims);
        H5Pset_fletcher32(dcpl);
        hid_t d = H5Dcreate2(g, p->name, H5T_IEEE_F32LE, sp, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        H5Pclose(dcpl);
        if (d < 0) ckpt_write_failed(tmp, p->name, errno);
        hsize_t rows = dims[0], r0 = rows * (hsize_t)rank / (hsize_t)world, r1 = rows * (hsize_t)(rank + 1) / (hsize_t)world;
        size_t row_elems = p->numel / (size_t)rows;
        start[0] = r0, count[0] = r1 - r0;
        hid_t mem = H5Screate_simple(p->ndim, count, NULL);
        if (r1 > r0) H5Sselect_hyperslab(sp, H5S_SELECT_SET, start, NULL, count, NULL);
        else H5Sselect_none(sp), H5Sselect_none(mem);
        if (H5Dwrite(d, H5T_NATIVE_FLOAT, mem, sp, dxpl, base + p->offset + r0 * row_elems) < 0)
            ckpt_write_failed(tmp, p->name, errno);
        H5Sclose(mem), H5Dclose(d), H5Sclose(sp);
    }
    H5Pclose(dxpl);
    H5Gclose(g);
}

/* Read group/<name> for every parameter present; returns how many are absent. */
static int read_group(hid_t f, const char *path, const char *group, const ParamStore *ps, float *base) {
    int missing;
    char detail[256];
    int bad = h5_param_group_check(f, path, group, ps, &missing, detail, sizeof detail);
    CHECK(bad < 0, "%s: %s/%s is %s (a checkpoint of another model size?)", path, group,
          bad >= 0 ? ps->info[bad].name : "", detail);
    return h5_param_group_read(f, path, group, ps, base);
}

static int cmp_u64_desc(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x < y) - (x > y);
}

/* The steps of dir's ckpt-<step>.h5 files, newest first; at most max. */
static int ckpt_steps(const char *dir, uint64_t *steps, int max) {
    DIR *dp = opendir(dir);
    if (!dp) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp)) && n < max) {
        unsigned long long s;
        char tail[8];
        if (sscanf(e->d_name, "ckpt-%llu.%7s", &s, tail) == 2 && strcmp(tail, "h5") == 0) steps[n++] = s;
    }
    closedir(dp);
    qsort(steps, (size_t)n, sizeof steps[0], cmp_u64_desc);
    return n;
}

#define CKPT_MAX_LISTED 4096

int ckpt_read_run_id(const char *path, char *id, size_t n) {
    if (n) id[0] = 0;
    io_hdf5_lock();
    hid_t f = -1;
    H5E_BEGIN_TRY { f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT); }
    H5E_END_TRY;
    if (f >= 0) {
        char *s = NULL;
        H5E_BEGIN_TRY {
            if (H5Aexists(f, "run_id") > 0) s = h5_read_str(f, "run_id");
        }
        H5E_END_TRY;
        if (s) snprintf(id, n, "%s", s);
        free(s);
        H5Fclose(f);
    }
    io_hdf5_unlock();
    return f >= 0 ? 0 : -1;
}

void ckpt_new_run_id(char *id, size_t n) {
    uint32_t r = 0;
    FILE *u = fopen("/dev/urandom", "rb");
    if (!u || fread(&r, sizeof r, 1, u) != 1) r = (uint32_t)getpid() * 2654435761u ^ (uint32_t)time(NULL);
    if (u) fclose(u);
    time_t now = time(NULL);
    struct tm tm;
    char when[32] = "00000000-000000";
    if (gmtime_r(&now, &tm)) strftime(when, sizeof when, "%Y%m%d-%H%M%S", &tm);
    snprintf(id, n, "%s-%08x", when, r);
}

/* Only this run's files, and none above the step just written: another
 * run's checkpoints are not this run's to delete (issue 28: a new run in a
 * used directory deleted its own newest files because older, higher-step
 * ones of the earlier run outranked them), and a higher step of this run is
 * a branch left by resuming from an earlier checkpoint, which the user may
 * still want. Among the rest: the newest keep_last, every keep_every-th and
 * the protected step stay. */
static void ckpt_prune(const char *dir, const CkptState *st, int keep_last, int keep_every) {
    if (!st->run_id[0]) return; /* a tool's file: it owns nothing to prune */
    uint64_t steps[CKPT_MAX_LISTED];
    int n = ckpt_steps(dir, steps, CKPT_MAX_LISTED), kept = 0;
    for (int i = 0; i < n; i++) {
        if (steps[i] > st->step) continue;
        char p[1200], id[CKPT_RUN_ID_MAX];
        snprintf(p, sizeof p, "%s/ckpt-%08llu.h5", dir, (unsigned long long)steps[i]);
        if (ckpt_read_run_id(p, id, sizeof id) != 0 || strcmp(id, st->run_id) != 0) continue;
        if (kept < keep_last) {
            kept++;
            continue;
        }
        if (keep_every > 0 && steps[i] % (uint64_t)keep_every == 0) continue;
        if (st->protect_step && steps[i] == st->protect_step) continue;
        unlink(p);
    }
}

int ckpt_count(const char *dir, uint64_t *newest) {
    uint64_t steps[CKPT_MAX_LISTED];
    int n = ckpt_steps(dir, steps, CKPT_MAX_LISTED);
    if (n > 0 && newest) *newest = steps[0];
    return n;
}

int ckpt_remove_all(const char *dir) {
    uint64_t steps[CKPT_MAX_LISTED];
    int n = ckpt_steps(dir, steps, CKPT_MAX_LISTED), removed = 0;
    for (int i = 0; i < n; i++) {
        char p[1200];
        snprintf(p, sizeof p, "%s/ckpt-%08llu.h5", dir, (unsigned long long)steps[i]);
        removed += unlink(p) == 0;
    }
    char p[1100];
    snprintf(p, sizeof p, "%s/latest", dir);
    unlink(p);
    ckpt_clean_stray(dir);
    return removed;
}

static int nonfinite_in(const ParamStore *ps, const float *base, const char *group, char *what, size_t n) {
    if (!base) return 0;
    for (int i = 0; i < ps->n; i++) {
        const float *x = base + ps->info[i].offset;
        for (size_t j = 0; j < ps->info[i].numel; j++)
            if (!isfinite(x[j])) {
                snprintf(what, n, "%s/%s (element %zu: %g)", group, ps->info[i].name, j, (double)x[j]);
                return 1;
            }
    }
    return 0;
}

int ckpt_find_nonfinite(const CkptData *d, char *what, size_t n) {
    const ParamStore *ps = d->params;
    if (nonfinite_in(ps, ps->host, "params", what, n)) return 1;
    if (d->opt && (nonfinite_in(ps, d->opt->m, "optim/m", what, n) || nonfinite_in(ps, d->opt->v, "optim/v", what, n)))
        return 1;
    for (int k = 0; k < d->n_ema; k++) {
        char g[32];
        snprintf(g, sizeof g, "ema/%d", k);
        if (d->ema && nonfinite_in(ps, d->ema[k], g, what, n)) return 1;
    }
    return 0;
}

void ckpt_clean_stray(const char *dir) {
    DIR *dp = opendir(dir);
    if (!dp) return;
    struct dirent *e;
    while ((e = readdir(dp))) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "ckpt-", 5) != 0 || len < 8 || strcmp(e->d_name + len - 7, ".h5.tmp") != 0) continue;
        char p[1200];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) == 0) fprintf(stderr, "notice: removed %s (a checkpoint write that did not finish)\n", p);
    }
    closedir(dp);
}

/* dir/latest := name, by rename, so a reader sees the old or the new name. */
static void ckpt_write_latest(const char *dir, const char *name) {
    char latest[1100], latest_tmp[1200];
    snprintf(latest, sizeof latest, "%s/latest", dir);
    snprintf(latest_tmp, sizeof latest_tmp, "%s.tmp", latest);
    FILE *lf = fopen(latest_tmp, "w");
    CHECK(lf != NULL, "cannot write %s: %s", latest_tmp, strerror(errno));
    fprintf(lf, "%s\n", name);
    CHECK(fclose(lf) == 0 && rename(latest_tmp, latest) == 0, "cannot update %s", latest);
}

int ckpt_point_latest(const char *dir, const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    char here[1400];
    snprintf(here, sizeof here, "%s/%s", dir, base);
    struct stat a, b;
    if (stat(path, &a) != 0 || stat(here, &b) != 0 || a.st_dev != b.st_dev || a.st_ino != b.st_ino) return 0;
    char cur[1400] = "";
    if (access(dir, F_OK) == 0) {
        char latest[1100];
        snprintf(latest, sizeof latest, "%s/latest", dir);
        FILE *f = fopen(latest, "r");
        if (f) {
            if (!fgets(cur, sizeof cur, f)) cur[0] = 0;
            fclose(f);
            cur[strcspn(cur, "\r\n")] = 0;
        }
    }
    if (!strcmp(cur, base)) return 0;
    ckpt_write_latest(dir, base);
    return 1;
}

int ckpt_save(Comm *comm, const char *dir, const CkptData *d, const CkptState *st, int keep_last, int keep_every) {
    int rank = comm ? comm->rank : 0, parallel = comm && comm->world > 1;
    if (rank == 0) io_mkdirs_or_die(dir);
    if (parallel) comm_barrier(comm);
    char final[1100], tmp[1200];
    snprintf(final, sizeof final, "%s/ckpt-%08llu.h5", dir, (unsigned long long)st->step);
    snprintf(tmp, sizeof tmp, "%s.tmp", final);
    io_hdf5_lock();
    H5E_auto2_t efunc;
    void *edata;
    H5Eget_auto2(H5E_DEFAULT, &efunc, &edata);
    if (!io_hdf5_errors_wanted()) H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* ckpt_write_failed reports */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (parallel) H5Pset_fapl_mpio(fapl, comm->mpi, MPI_INFO_NULL);
    /* The 1.10 format: HDF5 checksums its metadata (object headers, chunk
     * indices), so a damaged header is an error, not a wrong read. */
    H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110);
    errno = 0;
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (f < 0) ckpt_write_failed(tmp, "creating the file", errno);
    h5_write_str(f, "format", CKPT_FORMAT);
    h5_write_str(f, "code_version", CODE_VERSION);
    h5_write_u64(f, "step", st->step);
    h5_write_u64(f, "seed", st->seed);
    h5_write_u64(f, "loader_epoch", st->pos.epoch);
    h5_write_u64(f, "loader_offset", st->pos.offset);
    h5_write_u64(f, "world_size", (uint64_t)st->world_size);
    h5_write_f64(f, "pixelgen_lambda", st->aux_weight);
    h5_write_str(f, "run_id", st->run_id);
    if (d->config_yaml) h5_write_str(f, "config", d->config_yaml);
    write_group(f, tmp, "params", d->params, d->params->host, comm);
    /* Test hook: die half-way through a write, as a killed job would. */
    const char *crash = getenv("JIT_TEST_CRASH_IN_CHECKPOINT");
    if (crash && strtoull(crash, NULL, 10) == st->step) raise(SIGKILL);
    if (d->opt) {
        h5_write_u64(f, "adam_step", d->opt->step);
        H5Gclose(H5Gcreate2(f, "optim", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
        write_group(f, tmp, "optim/m", d->params, d->opt->m, comm);
        write_group(f, tmp, "optim/v", d->params, d->opt->v, comm);
    }
    if (d->n_ema > 0) {
        H5Gclose(H5Gcreate2(f, "ema", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
        hsize_t n = (hsize_t)d->n_ema;
        hid_t sp = H5Screate_simple(1, &n, NULL), a = H5Acreate2(f, "ema_decays", H5T_IEEE_F32LE, sp, H5P_DEFAULT,
                                                                  H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_FLOAT, d->ema_decay);
        H5Aclose(a), H5Sclose(sp);
        for (int k = 0; k < d->n_ema; k++) {
            char g[32];
            snprintf(g, sizeof g, "ema/%d", k);
            write_group(f, tmp, g, d->params, d->ema[k], comm);
        }
    }
    errno = 0;
    if (H5Fflush(f, H5F_SCOPE_GLOBAL) < 0 || H5Fclose(f) < 0) ckpt_write_failed(tmp, "finishing the file", errno);
    H5Eset_auto2(H5E_DEFAULT, efunc, edata);
    io_hdf5_unlock();
    if (parallel) comm_barrier(comm); /* every rank's rows are on disk */
    if (rank != 0) {
        if (parallel) comm_barrier(comm);
        return 0;
    }
    /* Only a complete file gets the real name, and only then does "latest" move. */
    CHECK(rename(tmp, final) == 0, "cannot rename %s to %s: %s", tmp, final, strerror(errno));
    char name[64];
    snprintf(name, sizeof name, "ckpt-%08llu.h5", (unsigned long long)st->step);
    ckpt_write_latest(dir, name);
    if (keep_last > 0) ckpt_prune(dir, st, keep_last, keep_every);
    if (rank == 0) ckpt_clean_stray(dir);
    if (parallel) comm_barrier(comm); /* nobody reads "latest" before it moved */
    return 0;
}

int ckpt_exists(const char *dir) {
    char p[1100];
    snprintf(p, sizeof p, "%s/latest", dir);
    return access(p, F_OK) == 0 || ckpt_count(dir, NULL) > 0;
}

void ckpt_resolve(const char *path, char *out, size_t n) {
    struct stat sb;
    CHECK(stat(path, &sb) == 0, "checkpoint %s does not exist", path);
    if (!S_ISDIR(sb.st_mode)) {
        io_require_regular(path, "the checkpoint"); /* a FIFO would block HDF5's open() */
        snprintf(out, n, "%s", path);
        return;
    }
    char latest[1100], name[256] = "", err[1400];
    snprintf(latest, sizeof latest, "%s/latest", path);
    if (access(latest, F_OK) != 0) FAIL("%s has no 'latest' file: no complete checkpoint in this directory", path);
    FILE *f = io_fopen_regular(latest, "the checkpoint pointer", err, sizeof err);
    CHECK(f != NULL, "%s", err);
    CHECK(fgets(name, sizeof name, f) != NULL, "%s is empty", latest);
    fclose(f);
    name[strcspn(name, "\r\n")] = 0;
    snprintf(out, n, "%s/%s", path, name);
}

/* Reads every dataset of a group (the tensors of params, optim/m, ...), so
 * HDF5 verifies each one's Fletcher-32 checksum; 0, or -1 with the first
 * that fails named in bad. By index, not H5Ovisit: its signature changed
 * between the HDF5 versions this builds with. */
static int ckpt_verify_group(hid_t f, const char *group, char *bad, size_t bad_len) {
    if (H5Lexists(f, group, H5P_DEFAULT) <= 0) return 0;
    hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
    H5G_info_t gi;
    if (g < 0 || H5Gget_info(g, &gi) < 0) {
        snprintf(bad, bad_len, "%s", group);
        if (g >= 0) H5Gclose(g);
        return -1;
    }
    int rc = 0;
    float *buf = NULL;
    size_t cap = 0;
    for (hsize_t i = 0; i < gi.nlinks && rc == 0; i++) {
        char name[PARAM_NAME_MAX + 8] = "";
        H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT);
        hid_t o = H5Oopen(g, name, H5P_DEFAULT);
        int is_dataset = o >= 0 && H5Iget_type(o) == H5I_DATASET;
        if (o >= 0) H5Oclose(o);
        if (!is_dataset) continue; /* subgroups (ema/<k>) are visited by the caller */
        hid_t d = H5Dopen2(g, name, H5P_DEFAULT), sp = d >= 0 ? H5Dget_space(d) : -1;
        hssize_t n = sp >= 0 ? H5Sget_simple_extent_npoints(sp) : -1;
        if (n > 0 && (size_t)n > cap) {
            free(buf);
            cap = (size_t)n;
            buf = malloc(cap * sizeof(float));
        }
        int ok = n == 0 || (n > 0 && buf && H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0);
        if (sp >= 0) H5Sclose(sp);
        if (d >= 0) H5Dclose(d);
        if (!ok) snprintf(bad, bad_len, "%s/%s", group, name), rc = -1;
    }
    free(buf);
    H5Gclose(g);
    return rc;
}

static int ckpt_verify_tensors(hid_t f, char *bad, size_t bad_len) {
    if (ckpt_verify_group(f, "params", bad, bad_len) || ckpt_verify_group(f, "optim/m", bad, bad_len) ||
        ckpt_verify_group(f, "optim/v", bad, bad_len))
        return -1;
    for (int k = 0; k < 64; k++) {
        char g[32];
        snprintf(g, sizeof g, "ema/%d", k);
        if (H5Lexists(f, "ema", H5P_DEFAULT) <= 0 || H5Lexists(f, g, H5P_DEFAULT) <= 0) break;
        if (ckpt_verify_group(f, g, bad, bad_len)) return -1;
    }
    return 0;
}

/* 1 when path opens as HDF5, carries this format and a step, and every
 * tensor reads back through its checksum: HDF5 checks the file's recorded
 * end against its size (a truncated file fails to open) and each chunk's
 * Fletcher-32 on reading (a flipped byte fails there). Otherwise 0, with
 * the reason in why. Reads the whole file once: resuming is rare, and a
 * corrupt newest checkpoint must fall back, not stop the run. */
static int ckpt_intact(const char *path, char *why, size_t why_len) {
    if (io_check_regular(path, "the checkpoint", why, why_len)) return 0;
    io_hdf5_lock();
    hid_t f = -1;
    H5E_BEGIN_TRY { f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT); }
    H5E_END_TRY;
    int ok = 0;
    snprintf(why, why_len, "cannot be opened as a checkpoint (truncated or not one?)");
    if (f >= 0) {
        char *fmt = NULL;
        H5E_BEGIN_TRY {
            if (H5Aexists(f, "format") > 0 && H5Aexists(f, "step") > 0) fmt = h5_read_str(f, "format");
        }
        H5E_END_TRY;
        ok = fmt && strcmp(fmt, CKPT_FORMAT) == 0 && H5Lexists(f, "params", H5P_DEFAULT) > 0;
        free(fmt);
        if (ok) {
            char bad[PARAM_NAME_MAX + 64] = "";
            int r = -1;
            H5E_BEGIN_TRY { r = ckpt_verify_tensors(f, bad, sizeof bad); }
            H5E_END_TRY;
            if (r != 0) {
                ok = 0;
                if (bad[0]) snprintf(why, why_len, "fails its checksum in %s (corrupt)", bad);
                else snprintf(why, why_len, "cannot be read through (corrupt)");
            }
        }
        H5Fclose(f);
    }
    io_hdf5_unlock();
    return ok;
}

int ckpt_resolve_intact(const char *dir, char *out, size_t len) {
    char want[1400] = "", why[400] = "";
    struct stat sb;
    CHECK(stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode), "checkpoint directory %s does not exist", dir);
    char latest[1100];
    snprintf(latest, sizeof latest, "%s/latest", dir);
    if (access(latest, R_OK) == 0) ckpt_resolve(dir, want, sizeof want);
    if (want[0] && ckpt_intact(want, why, sizeof why)) {
        snprintf(out, len, "%s", want);
        return 0;
    }
    if (!want[0]) snprintf(why, sizeof why, "is missing");
    /* The newest intact ckpt-*.h5, each failure said. */
    uint64_t steps[CKPT_MAX_LISTED];
    int n = ckpt_steps(dir, steps, CKPT_MAX_LISTED), found = 0;
    for (int i = 0; i < n && !found; i++) {
        snprintf(out, len, "%s/ckpt-%08llu.h5", dir, (unsigned long long)steps[i]);
        if (want[0] && !strcmp(out, want)) continue; /* already tried */
        char why2[400];
        found = ckpt_intact(out, why2, sizeof why2);
        if (!found) fprintf(stderr, "warning: %s %s: skipped\n", out, why2);
    }
    CHECK(found, "%s: no intact checkpoint (%s %s, and no ckpt-*.h5 there is intact): cannot resume", dir,
          want[0] ? want : latest, why);
    fprintf(stderr, "warning: %s %s: resuming from %s, the newest intact one\n", want[0] ? want : latest, why, out);
    return 1;
}

int ckpt_load(const char *path, CkptData *d, CkptState *st, char **config_yaml) {
    io_require_regular(path, "the checkpoint");
    io_hdf5_lock();
    hid_t f = -1;
    H5E_BEGIN_TRY { f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT); }
    H5E_END_TRY;
    CHECK(f >= 0, "%s: cannot open as HDF5 (missing, truncated or not a checkpoint)", path);
    /* A tensor failing its checksum is reported by read_group in one line
     * naming the file and the tensor; HDF5's own stack (20 lines) only with
     * JIT_HDF5_ERRORS=1. Left silenced when a CHECK below stops the run. */
    H5E_auto2_t efunc;
    void *edata;
    H5Eget_auto2(H5E_DEFAULT, &efunc, &edata);
    if (!io_hdf5_errors_wanted()) H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    char *fmt = h5_read_str(f, "format");
    CHECK(fmt && strcmp(fmt, CKPT_FORMAT) == 0, "%s: format is '%s', expected '%s'", path, fmt ? fmt : "(none)",
          CKPT_FORMAT);
    free(fmt);
    if (st) {
        st->step = read_u64(f, path, "step");
        st->seed = read_u64(f, path, "seed");
        st->pos.epoch = read_u64(f, path, "loader_epoch");
        st->pos.offset = read_u64(f, path, "loader_offset");
        st->world_size = (int)read_u64(f, path, "world_size");
        if (h5_read_f64(f, "pixelgen_lambda", &st->aux_weight) != 1) st->aux_weight = 1.0; /* older files */
        st->run_id[0] = 0; /* older files and tools' have none */
        char *id = H5Aexists(f, "run_id") > 0 ? h5_read_str(f, "run_id") : NULL;
        if (id) snprintf(st->run_id, sizeof st->run_id, "%s", id);
        free(id);
        st->protect_step = 0;
    }
    int missing = read_group(f, path, "params", d->params, d->params->host);
    if (d->opt) {
        if (H5Lexists(f, "optim", H5P_DEFAULT) > 0) {
            d->opt->step = read_u64(f, path, "adam_step");
            read_group(f, path, "optim/m", d->params, d->opt->m);
            read_group(f, path, "optim/v", d->params, d->opt->v);
        }
    }
    for (int k = 0; k < d->n_ema; k++) {
        char g[32];
        snprintf(g, sizeof g, "ema/%d", k);
        if (H5Lexists(f, "ema", H5P_DEFAULT) > 0 && H5Lexists(f, g, H5P_DEFAULT) > 0)
            read_group(f, path, g, d->params, d->ema[k]);
        else /* no EMA saved (e.g. a converted checkpoint): start it from the weights */
            memcpy(d->ema[k], d->params->host, d->params->padded * sizeof(float));
    }
    if (config_yaml) *config_yaml = h5_read_str(f, "config");
    H5Fclose(f);
    H5Eset_auto2(H5E_DEFAULT, efunc, edata);
    io_hdf5_unlock();
    return missing;
}

char *ckpt_read_config(const char *path) {
    io_require_regular(path, "the checkpoint");
    io_hdf5_lock();
    hid_t f = -1;
    H5E_BEGIN_TRY { f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT); }
    H5E_END_TRY;
    CHECK(f >= 0, "%s: cannot open as HDF5 (missing, truncated or not a checkpoint)", path);
    char *yaml = h5_read_str(f, "config");
    H5Fclose(f);
    io_hdf5_unlock();
    return yaml;
}
