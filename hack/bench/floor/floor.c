/*
 * floor: the C floor of `make bench`, what a FUSE file costs at the least.
 *
 * A minimal server on libfuse3's low-level API, built by the bench with gcc
 * against libfuse3-dev (hack/deps.sh bench). It serves, flat in its root,
 * files named 0, 1, ... whose fixed bytes are read once at start from the
 * files named on the command line, and does no work per open: OPEN answers
 * with direct_io (as cgprocfs does, so every read is a round trip) and
 * noflush (close(2) sends no FLUSH), READ replies from the bytes, and the
 * names and attributes are cached by the kernel for an hour. It runs
 * libfuse's multi-threaded loop. What cgprocfs costs above it is its own;
 * what it costs itself is the kernel's round trips.
 *
 * Usage: floor MOUNTPOINT FILE...   (root; SIGTERM unmounts and exits)
 */
/*
 * 3.12: the fuse_loop_cfg_* API. With an older version the loop call reads
 * the config with the old layout, gets no idle threads, and starts a thread
 * per request: hundreds of reads a second instead of thousands.
 */
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct file {
	char name[24];
	char *data;
	size_t size;
};

static struct file *files;
static size_t nfiles;

/* Inode 1 is the root; file i is inode i+2. */
static struct file *file_of(fuse_ino_t ino)
{
	if (ino < 2 || ino - 2 >= nfiles)
		return NULL;
	return &files[ino - 2];
}

static void fill_attr(fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	if (ino == FUSE_ROOT_ID) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
	} else {
		/* Size 0 as cgprocfs and /proc report: direct I/O reads to EOF. */
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
	}
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	size_t i;

	if (parent != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	for (i = 0; i < nfiles; i++) {
		if (strcmp(files[i].name, name) == 0) {
			memset(&e, 0, sizeof(e));
			e.ino = i + 2;
			e.attr_timeout = 3600;
			e.entry_timeout = 3600;
			fill_attr(e.ino, &e.attr);
			fuse_reply_entry(req, &e);
			return;
		}
	}
	fuse_reply_err(req, ENOENT);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	if (ino != FUSE_ROOT_ID && !file_of(ino)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_attr(ino, &st);
	fuse_reply_attr(req, &st, 3600);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (!file_of(ino)) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EACCES);
		return;
	}
	fi->direct_io = 1;
	fi->noflush = 1;
	fuse_reply_open(req, fi);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct file *f = file_of(ino);

	(void)fi;
	if (!f) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (off < 0 || (size_t)off >= f->size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > f->size - (size_t)off)
		size = f->size - (size_t)off;
	fuse_reply_buf(req, f->data + off, size);
}

static const struct fuse_lowlevel_ops ops = {
	.lookup = op_lookup,
	.getattr = op_getattr,
	.open = op_open,
	.read = op_read,
};

/* load reads path to its end (a /proc file's size says 0, so no stat). */
static int load(struct file *f, size_t i, const char *path)
{
	FILE *in = fopen(path, "rb");
	size_t cap = 4096, n;

	if (!in)
		return -1;
	f->data = malloc(cap);
	while (f->data && (n = fread(f->data + f->size, 1, cap - f->size, in)) > 0) {
		f->size += n;
		if (f->size == cap)
			f->data = realloc(f->data, cap *= 2);
	}
	if (!f->data || ferror(in)) {
		fclose(in);
		return -1;
	}
	fclose(in);
	snprintf(f->name, sizeof(f->name), "%zu", i);
	return 0;
}

int main(int argc, char **argv)
{
	/* allow_other as cgprocfs mounts; the bench reads as root anyway. */
	char *fargv[] = {argv[0], "-o", "allow_other,ro,fsname=cgprocfs-floor,subtype=floor", NULL};
	struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
	struct fuse_session *se;
	struct fuse_loop_config *cfg;
	size_t i;
	int ret = 1;

	if (argc < 3) {
		fprintf(stderr, "usage: %s MOUNTPOINT FILE...\n", argv[0]);
		return 2;
	}
	nfiles = (size_t)(argc - 2);
	files = calloc(nfiles, sizeof(*files));
	if (!files)
		return 1;
	for (i = 0; i < nfiles; i++) {
		if (load(&files[i], i, argv[i + 2]) != 0) {
			fprintf(stderr, "floor: reading %s: %s\n", argv[i + 2], strerror(errno));
			return 1;
		}
	}
	se = fuse_session_new(&args, &ops, sizeof(ops), NULL);
	if (!se)
		return 1;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_destroy;
	if (fuse_session_mount(se, argv[1]) != 0)
		goto out_signals;
	cfg = fuse_loop_cfg_create();
	/* 10 workers at most, as libfuse's default, all kept once started. */
	fuse_loop_cfg_set_max_threads(cfg, 10);
	fuse_loop_cfg_set_idle_threads(cfg, 10);
	ret = fuse_session_loop_mt(se, cfg);
	fuse_loop_cfg_destroy(cfg);
	fuse_session_unmount(se);
out_signals:
	fuse_remove_signal_handlers(se);
out_destroy:
	fuse_session_destroy(se);
	return ret ? 1 : 0;
}
