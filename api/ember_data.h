/*
 * ember_data.h — datasets, CSV files and the DataLoader (torch.utils.data).
 *
 * Part of Ember's public API; include after (or instead of) ember.h, whose
 * conventions apply unchanged: errors are a status plus the thread-local
 * em_last_error() message, library code never aborts, and every function
 * returning em_tensor * follows the ownership rule (the reference belongs to
 * the calling thread's innermost open scope, or to the caller when none is
 * open).
 *
 * The pieces:
 *   em_dataset     a length and a get-item callback that writes one sample's
 *                  fields (1..EM_DATASET_MAX_FIELDS, each with a dtype and a
 *                  per-sample shape) into host memory. Built from C callbacks
 *                  (em_dataset_create) or from tensors (em_tensor_dataset_create).
 *   em_csv_read    a numeric CSV file (optionally gzip-compressed) into a
 *                  features tensor [rows, cols] and a labels tensor [rows].
 *   em_dataloader  batches of a dataset, in order or shuffled per epoch from a
 *                  seed, built in the calling thread or ahead of time by worker
 *                  threads, uploaded to a device.
 *
 * Typical use:
 *
 *   em_tensor *x, *y;
 *   em_csv_read("iris.csv", NULL, &x, &y);            // f32 [150,4], i64 [150]
 *   em_dataset *ds = em_tensor_dataset_create(2, (em_tensor *const[]){x, y});
 *   em_tensor_release(x);                             // the dataset copied them
 *   em_tensor_release(y);
 *   em_dataloader *dl = em_dataloader_create(ds, &(em_dataloader_options){
 *       .batch_size = 32, .shuffle = true, .num_workers = 2, .seed = 1});
 *   em_dataset_destroy(ds);                           // the loader keeps it
 *   for (int epoch = 0; epoch < 10; epoch++) {
 *       em_tensor *batch[2];
 *       em_status st;
 *       em_dataloader_begin_epoch(dl);
 *       for (;;) {
 *           em_scope_begin();                         // owns the batch and the step
 *           st = em_dataloader_next(dl, batch);
 *           if (st != EM_OK || !batch[0]) { em_scope_end(); break; }
 *           ... train on batch[0] (f32 [B,4]) and batch[1] (i64 [B]) ...
 *           em_scope_end();
 *       }
 *       if (st != EM_OK) { puts(em_last_error()); break; }
 *   }
 *   em_dataloader_destroy(dl);
 *
 * Threads: an em_dataset may be shared by several loaders and threads; its
 * get_item callback is then called concurrently (see em_dataset_def). One
 * em_dataloader must be driven by one thread at a time (the "consumer"); its
 * workers are internal. Errors raised in a worker are carried to the consumer
 * and re-raised there, with their message, by em_dataloader_next.
 */
#ifndef EMBER_DATA_H
#define EMBER_DATA_H

#include "ember.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Datasets                                                                  */
/* ------------------------------------------------------------------------ */

/* Most fields a sample may have (e.g. features and label: 2). */
#define EM_DATASET_MAX_FIELDS 8

typedef struct em_dataset em_dataset;

/* Describes a dataset written in C. Copied by em_dataset_create.
 *
 *   len(ctx)          the number of samples (>= 0). Called by em_dataset_len,
 *                     i.e. when a loader is created, at the start of every
 *                     epoch and by em_dataloader_len, always on the thread that
 *                     calls those functions. Required.
 *   get_item(ctx, index, fields)
 *                     writes sample `index` (0 <= index < len) into
 *                     fields[0..n_fields-1]: fields[f] points to
 *                     numel(shapes[f]) elements of dtypes[f], to be written
 *                     contiguously in row-major order (bool: one byte 0 or 1).
 *                     Returns EM_OK, or a status on failure, preferably after
 *                     em_dataset_fail(status, "why") so the error says why;
 *                     the loader adds the sample index. The buffers are the
 *                     loader's: do not keep the pointers. Required.
 *                     THREAD SAFETY: with a loader's num_workers > 0 (or a
 *                     dataset shared by loaders on several threads) get_item
 *                     runs concurrently on several threads with distinct
 *                     indices, so it must not modify shared state without
 *                     its own locking. It may call Ember functions (errors
 *                     and scopes are per thread), but should not leave a
 *                     scope open or an error pending when it returns EM_OK.
 *   destroy(ctx)      called once when the dataset is freed (the last of
 *                     em_dataset_destroy and the loaders using it). Optional.
 *   ctx               passed to the callbacks; owned by the caller unless
 *                     destroy frees it.
 *   n_fields          1..EM_DATASET_MAX_FIELDS.
 *   dtypes[f]         a valid em_dtype.
 *   ndims[f]          0..EM_MAX_DIMS-1 dims per sample (a batch adds one).
 *   shapes[f][0..ndims[f]-1]  per-sample sizes, each >= 0. */
typedef struct em_dataset_def {
    int64_t (*len)(void *ctx);
    em_status (*get_item)(void *ctx, int64_t index, void *const *fields);
    void (*destroy)(void *ctx);
    void *ctx;
    int n_fields;
    em_dtype dtypes[EM_DATASET_MAX_FIELDS];
    int ndims[EM_DATASET_MAX_FIELDS];
    int64_t shapes[EM_DATASET_MAX_FIELDS][EM_MAX_DIMS];
} em_dataset_def;

/* A dataset from a definition (copied). Returns NULL with
 * EM_ERR_NULL_ARG (def, len or get_item NULL), EM_ERR_INVALID_ARG (n_fields,
 * ndims or a size out of range), EM_ERR_DTYPE (invalid dtype) or
 * EM_ERR_OUT_OF_MEMORY. On failure def->destroy is NOT called. The caller
 * owns the handle and frees it with em_dataset_destroy. Thread-safe. */
EM_API em_dataset *em_dataset_create(const em_dataset_def *def);

/* A dataset over tensors that share their first dimension (torch's
 * TensorDataset): sample i is (tensors[0][i], ..., tensors[n-1][i]), each
 * field with its tensor's dtype and shape minus the first dim. n is
 * 1..EM_DATASET_MAX_FIELDS; each tensor has 1..EM_MAX_DIMS dims and may live
 * on any device and have any layout. The tensors' values are copied to host
 * memory once, here (one synchronising read each), so the dataset costs
 * their size in host memory, later changes to the tensors are not seen, the
 * tensors are not retained (release them when you like), and get_item is a
 * memcpy, thread-safe for any number of workers. Errors (NULL returned):
 * EM_ERR_NULL_ARG, EM_ERR_INVALID_ARG (n out of range, a 0-d tensor),
 * EM_ERR_SHAPE (first dims differ; the message names both tensors and
 * sizes), EM_ERR_OUT_OF_MEMORY, or a read failure from the device. */
EM_API em_dataset *em_tensor_dataset_create(int n, em_tensor *const *tensors);

/* Drops the creator's handle. The dataset (and def.destroy(ctx)) is freed
 * when no loader uses it any more, so it may be destroyed right after
 * creating its loaders. NULL is a no-op. */
EM_API void em_dataset_destroy(em_dataset *ds);
/* Adds a handle (each one dropped by em_dataset_destroy). Returns ds. */
EM_API em_dataset *em_dataset_retain(em_dataset *ds);

/* The number of samples (calls def.len). -1 with EM_ERR_NULL_ARG for NULL,
 * -1 with EM_ERR_INVALID_ARG when len returns a negative number. */
EM_API int64_t em_dataset_len(const em_dataset *ds);
/* Number of fields per sample; -1 for NULL (EM_ERR_NULL_ARG). */
EM_API int em_dataset_num_fields(const em_dataset *ds);
/* Describes field `field`: its dtype, per-sample ndim and shape (each out
 * pointer may be NULL; shape needs EM_MAX_DIMS entries). EM_ERR_NULL_ARG,
 * EM_ERR_INDEX (field out of range). */
EM_API em_status em_dataset_field(const em_dataset *ds, int field, em_dtype *dtype, int *ndim,
                                  int64_t *shape);
/* Bytes one sample of field `field` takes (numel * dtype size); 0 with an
 * error for a bad argument. */
EM_API size_t em_dataset_field_bytes(const em_dataset *ds, int field);

/* Calls get_item(ctx, index, fields) directly: the raw access the loader
 * uses, for your own batching. Does not call len: index is only checked to
 * be >= 0 (EM_ERR_INDEX) and is otherwise the callback's to check. When the
 * callback fails without recording a message, one naming the status is
 * recorded. Returns the callback's status. Thread safety as get_item's. */
EM_API em_status em_dataset_read_item(const em_dataset *ds, int64_t index, void *const *fields);

/* Sample `index` as tensors (torch: dataset[index]): fields[f] gets a
 * tensor of field f's dtype and per-sample shape on `device` (NULL = the
 * default device); ownership rule as usual. EM_ERR_INDEX when index is not
 * in [0, len). On failure every fields[f] is NULL. */
EM_API em_status em_dataset_get(const em_dataset *ds, int64_t index, em_device *device,
                                em_tensor **fields);

/* For get_item callbacks: records (status, formatted message) as this
 * thread's pending error and returns status, so a callback can
 *   return em_dataset_fail(EM_ERR_IO, "record %lld: bad checksum", (long long)i);
 * EM_OK is replaced by EM_ERR_IO. Messages are truncated at 2 KiB. */
EM_API em_status em_dataset_fail(em_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ------------------------------------------------------------------------ */
/* CSV files                                                                 */
/* ------------------------------------------------------------------------ */

/* label_column value for files without a label column. */
#define EM_CSV_NO_LABEL (-1000000)

typedef enum em_csv_header {
    EM_CSV_HEADER_AUTO = 0, /* skip the first non-empty line when any of its
                               fields is not a number (e.g. sklearn's
                               "150,4,setosa,versicolor,virginica")          */
    EM_CSV_HEADER_NONE = 1, /* every line is data                            */
    EM_CSV_HEADER_SKIP = 2  /* the first non-empty line is skipped           */
} em_csv_header;

/* Options of em_csv_read. Start from em_csv_options_default() (passing
 * NULL means exactly those defaults) and change what you need. */
typedef struct em_csv_options {
    em_csv_header header;  /* default EM_CSV_HEADER_AUTO                      */
    char delimiter;        /* default ',' (0 also means ','); not '\n', '\r',
                              '"', a digit, '+', '-', '.', 'e' or 'E'         */
    int label_column;      /* 0-based; negative counts from the end; default
                              -1 (the last column); EM_CSV_NO_LABEL: none    */
    em_dtype feature_dtype;/* EM_F32 (default) or EM_F64                      */
    em_dtype label_dtype;  /* EM_I64 (default; values must be whole numbers),
                              EM_I32, EM_F32 or EM_F64 (regression targets)   */
    em_device *device;     /* where the tensors are made; NULL = default      */
} em_csv_options;

/* The defaults listed above. */
EM_API em_csv_options em_csv_options_default(void);

/* Reads a numeric CSV file: one sample per line, the same number of fields
 * on every line, fields separated by the delimiter, each a number as
 * strtod reads it in the "C" locale whatever the process's locale (spaces
 * and tabs around it are allowed; "nan" and "inf" are accepted for
 * features, not for integer labels). Lines end in "\n" or "\r\n"; blank
 * lines are ignored; a UTF-8 byte-order mark is skipped. A file starting
 * with the gzip magic bytes (whatever its name, e.g. digits.csv.gz) is
 * decompressed by running `gzip -dc` with the file as its standard input
 * (no shell involved), so gzip must be on PATH for compressed files.
 *
 * Outputs (ownership rule as usual): *features [rows, cols] of
 * feature_dtype with every column but the label column, in file order;
 * *labels [rows] of label_dtype. With label_column EM_CSV_NO_LABEL every
 * column is a feature and labels may be NULL (if not, *labels is set to
 * NULL). On failure *features and *labels are NULL.
 *
 * Errors: EM_ERR_NULL_ARG (path or features NULL; labels NULL while a label
 * column is wanted); EM_ERR_INVALID_ARG (bad options); EM_ERR_IO (cannot open
 * or read the file, gzip missing or failing, and every content error, with
 * 1-based line and column: "iris.csv:7:3: '1.2x' is not a number", an empty
 * field, a row with another number of fields than the first data row, a
 * label that is not a whole number in range, an empty file or one without
 * data rows); EM_ERR_INDEX (label_column outside the row); EM_ERR_OUT_OF_MEMORY;
 * a device error from creating the tensors. Thread-safe. */
EM_API em_status em_csv_read(const char *path, const em_csv_options *opt, em_tensor **features,
                             em_tensor **labels);

/* ------------------------------------------------------------------------ */
/* DataLoader                                                                */
/* ------------------------------------------------------------------------ */

typedef struct em_dataloader em_dataloader;

/* Options of em_dataloader_create; zero-initialise and set batch_size. */
typedef struct em_dataloader_options {
    int64_t batch_size;  /* samples per batch, >= 1 (0 is EM_ERR_INVALID_ARG)  */
    bool shuffle;        /* a new permutation every epoch (else 0, 1, 2, ...)  */
    bool drop_last;      /* drop the last batch when it has < batch_size samples */
    int num_workers;     /* 0: batches are built inside em_dataloader_next on the
                            calling thread; 1..256: that many worker threads
                            build and upload batches ahead of the consumer     */
    int prefetch_factor; /* batches prepared ahead per worker; 0 means 2, so
                            at most prefetch_factor * num_workers batches are
                            in flight or waiting (1..64)                      */
    em_device *device;   /* where batches are made; NULL = em_device_default() */
    uint64_t seed;       /* shuffling seed (see em_dataloader_begin_epoch)     */
} em_dataloader_options;

/* A loader over ds (which it retains: the caller may em_dataset_destroy ds
 * right away). Starts the worker threads, which wait for the first epoch.
 * Returns NULL with EM_ERR_NULL_ARG (ds, opt), EM_ERR_INVALID_ARG
 * (batch_size < 1, num_workers or prefetch_factor out of range),
 * EM_ERR_DEVICE (no default device), EM_ERR_OUT_OF_MEMORY, or
 * EM_ERR_INTERNAL when a thread cannot be started (those started are
 * joined). Free with em_dataloader_destroy. */
EM_API em_dataloader *em_dataloader_create(em_dataset *ds, const em_dataloader_options *opt);

/* Stops and joins the workers (waiting at most for the sample each is
 * writing; a mid-epoch loader is fine), drops prepared batches, releases
 * the dataset handle and frees the loader. NULL is a no-op. Call it from
 * the consumer thread, not from a get_item callback. */
EM_API void em_dataloader_destroy(em_dataloader *dl);

/* Starts an epoch: abandons any unfinished one (workers finish the sample
 * they are on; prepared batches are dropped), calls the dataset's len, and
 * with shuffle draws the epoch's order, a permutation that depends only on
 * (seed, epoch number, len): the same seed gives the same orders, each
 * epoch's differs. Epochs are numbered from 0; each begin_epoch starts the
 * next number (see em_dataloader_set_epoch). Workers start preparing
 * batches at once. em_dataloader_next also calls it by itself when no epoch
 * is running (on the first call, and after the end of an epoch or a failed
 * batch). Errors: EM_ERR_NULL_ARG, EM_ERR_INVALID_ARG (len failed; the
 * loader then has no epoch running), EM_ERR_OUT_OF_MEMORY. */
EM_API em_status em_dataloader_begin_epoch(em_dataloader *dl);

/* The number the next em_dataloader_begin_epoch gives its epoch (to resume
 * a shuffled run at epoch e, as torch's DistributedSampler.set_epoch).
 * Also abandons the running epoch. EM_ERR_NULL_ARG, EM_ERR_INVALID_ARG (e < 0). */
EM_API em_status em_dataloader_set_epoch(em_dataloader *dl, int64_t epoch);

/* The number of the running (or last) epoch; -1 before the first one or for NULL. */
EM_API int64_t em_dataloader_epoch(const em_dataloader *dl);

/* The next batch of the epoch: batch_fields[f] (one per dataset field,
 * the array needs em_dataset_num_fields entries) gets a tensor [B, ...field
 * shape] of the field's dtype on the loader's device, where B = batch_size,
 * or fewer for the last batch (dropped with drop_last); sample order within
 * the batch is the epoch's order. Ownership rule as usual (the tensors
 * belong to the calling thread's innermost open scope, if any). Batches
 * are identical, in content and order, whatever num_workers is.
 *
 * End of the epoch: returns EM_OK with every batch_fields[f] NULL; the
 * next call starts a new epoch. So a loop is
 *   while ((st = em_dataloader_next(dl, b)) == EM_OK && b[0]) { ... }
 * followed by a check of st.
 *
 * Errors (every batch_fields[f] NULL): EM_ERR_NULL_ARG; the status of a
 * failed get_item, with the message "em_dataloader_next: sample I (batch B
 * of epoch E): <the callback's message>" whether it ran here or in a
 * worker; an upload failure to the device; EM_ERR_INVALID_ARG when len
 * fails at the start of an epoch. Batches before a failed one are all
 * delivered first (as with num_workers 0); the failure ends the epoch (the
 * workers stop preparing it) and the next call starts a new one. */
EM_API em_status em_dataloader_next(em_dataloader *dl, em_tensor **batch_fields);

/* Batches per epoch for the dataset's current len: ceil(len / batch_size),
 * or floor with drop_last. -1 for NULL or when len fails (error recorded). */
EM_API int64_t em_dataloader_len(const em_dataloader *dl);

/* The dataset the loader reads (borrowed; valid while the loader lives). */
EM_API em_dataset *em_dataloader_dataset(const em_dataloader *dl);

#ifdef __cplusplus
}
#endif

#endif /* EMBER_DATA_H */
