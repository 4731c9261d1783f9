/* train/programs/classify_main.c — jit-classify: train and test the evaluation
 * classifier (train/eval/classifier.h, docs/eval.md).
 *
 *   jit-classify train --config configs/eval/fmnist-classifier.yaml [--set section.key=value ...] [--out FILE]
 *       trains on data.train, prints the test accuracy on data.test and the
 *       training time, writes the weights (HDF5) to run.out (or --out).
 *   jit-classify test --model FILE --data DIR [--batch N]
 *       prints the accuracy (overall and per class) of a weights file on a shard set. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/alloc.h"
#include "core/check.h"
#include "io/fsutil.h"
#include "io/shards.h"
#include "kernels/cpu/blas_select.h"
#include "train/eval/classifier.h"

static _Noreturn void usage(const char *why) {
    if (why) fprintf(stderr, "jit-classify: %s\n", why);
    fprintf(stderr, "usage:\n"
                    "  jit-classify train --config FILE [--set section.key=value ...] [--out FILE]\n"
                    "  jit-classify test --model FILE --data DIR [--batch N]\n");
    exit(2);
}

/* mkdir -p of the folder that will hold `path` */
static void make_parent(const char *path) {
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s", path);
    char *slash = strrchr(tmp, '/');
    if (!slash || slash == tmp) return;
    *slash = 0;
    io_mkdirs_or_die(tmp);
}

static int cmd_train(int argc, char **argv) {
    const char *config = NULL, *out = NULL;
    char **over = core_malloc(sizeof(char *) * (size_t)(argc + 1));
    int n_over = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage("missing value");
        if (!strcmp(a, "--config")) config = v;
        else if (!strcmp(a, "--set")) over[n_over++] = argv[i + 1];
        else if (!strcmp(a, "--out")) out = v;
        else usage("unknown option");
        i++;
    }
    if (!config) usage("train needs --config");
    ClassifierTrainConfig c;
    char err[2048];
    if (classifier_train_config_load(&c, config, n_over, over, err, sizeof err)) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    core_free(over);
    if (out) snprintf(c.out, sizeof c.out, "%s", out);
    make_parent(c.out); /* before the training, not after */
    Classifier m;
    ClassifierTrainResult r = classifier_train(&c, &m, stdout);
    printf("jit-classify: trained %d steps in %.1f s; test accuracy %.4f on %d images of %s\n", c.steps,
           r.train_seconds, r.test_accuracy, r.n_test, c.data_test);
    char *yaml = classifier_train_config_yaml(&c);
    classifier_save(c.out, &m, c.seed, yaml);
    free(yaml);
    printf("jit-classify: wrote %s\n", c.out);
    classifier_free(&m);
    return 0;
}

static int cmd_test(int argc, char **argv) {
    const char *model = NULL, *data = NULL;
    int batch = 64;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage("missing value");
        if (!strcmp(a, "--model")) model = v;
        else if (!strcmp(a, "--data")) data = v;
        else if (!strcmp(a, "--batch")) batch = atoi(v);
        else usage("unknown option");
        i++;
    }
    if (!model || !data) usage("test needs --model and --data");
    CHECK(batch >= 1, "--batch must be positive");
    Classifier m;
    classifier_load(model, &m);
    const ClassifierConfig *mc = &m.cfg;
    float *img;
    int *lab, n, C, H, W, K;
    shardset_read_all(data, &img, &lab, &n, &C, &H, &W, &K);
    CHECK(C == mc->channels && H == mc->img_size && W == mc->img_size,
          "%s holds %dx%dx%d images but the classifier %s was trained on %dx%dx%d", data, C, H, W, model,
          mc->channels, mc->img_size, mc->img_size);
    CHECK(K <= mc->num_classes, "%s has %d classes, the classifier %d", data, K, mc->num_classes);
    Graph g;
    graph_init(&g, backend_cpu(), 16u << 20);
    int *pred = core_malloc(sizeof(int) * (size_t)n);
    classifier_predict(&m, &g, img, n, batch, NULL, pred);
    double *pc = core_malloc(sizeof(double) * (size_t)mc->num_classes);
    double acc = classifier_accuracy(pred, lab, n, mc->num_classes, pc);
    printf("jit-classify: %s on %s: accuracy %.4f (%d images)\n", model, data, acc, n);
    printf("per class:");
    for (int k = 0; k < mc->num_classes; k++) printf(" %d:%.3f", k, pc[k]);
    printf("\n");
    core_free(pred), core_free(pc), core_free(img), core_free(lab);
    graph_free(&g);
    classifier_free(&m);
    return 0;
}

int main(int argc, char **argv) {
    blas_select(argv, 0); /* first: it may start the program again (blas_select.h) */
    if (argc < 2) usage(NULL);
    if (!strcmp(argv[1], "train")) return cmd_train(argc - 2, argv + 2);
    if (!strcmp(argv[1], "test")) return cmd_test(argc - 2, argv + 2);
    usage("the first argument is train or test");
}
