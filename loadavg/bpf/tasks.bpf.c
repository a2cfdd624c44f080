// SPDX-License-Identifier: (GPL-2.0-only OR Apache-2.0)
//
// A task iterator for cgprocfs's "bpf" load counter. Each read of the
// iterator walks every task (thread) in the kernel and writes one record
// for each task that the kernel's load average counts at this moment
// (loadavg_cgroup_tasks, at the end, does the same for one cgroup):
//
//	struct { __u32 tid; __u32 kind; }  kind 1: runnable (R), 2: D
//
// little more than a handful per CPU on an idle host, so a round costs one
// walk in the kernel and a few bytes of output. Regenerate the committed
// tasks.bpf.o with hack/gen-bpf.sh.
//
// The rule is the scheduler's own (kernel/sched/core.c, 6.1 to 6.18):
// a task is runnable when __state is TASK_RUNNING, and a blocked task
// contributes to the load (p->sched_contributes_to_load) when
//
//	(state & TASK_UNINTERRUPTIBLE) && !(state & TASK_NOLOAD) && !(state & TASK_FROZEN)
//
// No vmlinux.h: the two structs below name only the fields we read and
// carry preserve_access_index, so libbpf-style CO-RE relocations (applied
// by cilium/ebpf at load) take the offsets from the running kernel's BTF.
// __state appeared in 5.14 (it was "state" before); on older kernels the
// relocation fails, the program does not load and cgprocfs counts threads.

#include <linux/types.h>
#include <bpf/bpf_helpers.h>

#define TASK_RUNNING 0x0000
#define TASK_UNINTERRUPTIBLE 0x0002
#define TASK_NOLOAD 0x0400
#define TASK_FROZEN 0x8000

#define KIND_RUNNING 1
#define KIND_UNINTERRUPTIBLE 2

struct task_struct {
	unsigned int __state;
	int pid;
} __attribute__((preserve_access_index));

struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
} __attribute__((preserve_access_index));

struct bpf_iter__task {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
} __attribute__((preserve_access_index));

struct record {
	__u32 tid;
	__u32 kind;
};

// write_if_counted writes task's record when the load average counts it.
static __always_inline void write_if_counted(struct seq_file *seq, struct task_struct *task)
{
	struct record r;
	unsigned int state;

	// A trusted BTF pointer: a plain load, relocated by CO-RE.
	state = *(volatile unsigned int *)&task->__state;
	if (state == TASK_RUNNING)
		r.kind = KIND_RUNNING;
	else if ((state & TASK_UNINTERRUPTIBLE) && !(state & TASK_NOLOAD) &&
		 !(state & TASK_FROZEN))
		r.kind = KIND_UNINTERRUPTIBLE;
	else
		return;
	// The tid in the initial pid namespace, as a host cgroup's thread
	// list shows it to cgprocfs (which runs in the host's namespace).
	r.tid = task->pid;
	bpf_seq_write(seq, &r, sizeof(r));
}

SEC("iter/task")
int loadavg_tasks(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;

	if (!task) // the end of the walk
		return 0;
	write_if_counted(ctx->meta->seq, task);
	return 0;
}

// The same records for the tasks of one cgroup and those below it only:
// cgprocfs attaches this cgroup iterator to a container's cgroup (v1 or v2)
// in pre-order, and the program walks each cgroup's tasks with the css_task
// iterator kfuncs (Linux 6.7 and later; before, it does not load and the
// host-wide walk above serves). A walk then costs the container's tasks,
// not the host's.

struct cgroup_subsys_state {
	int __unused;
} __attribute__((preserve_access_index));

struct cgroup {
	struct cgroup_subsys_state self;
} __attribute__((preserve_access_index));

struct bpf_iter__cgroup {
	struct bpf_iter_meta *meta;
	struct cgroup *cgroup;
} __attribute__((preserve_access_index));

struct bpf_iter_css_task {
	__u64 __opaque[1];
} __attribute__((aligned(8)));

extern int bpf_iter_css_task_new(struct bpf_iter_css_task *it,
				 struct cgroup_subsys_state *css, unsigned int flags) __ksym;
extern struct task_struct *bpf_iter_css_task_next(struct bpf_iter_css_task *it) __ksym;
extern void bpf_iter_css_task_destroy(struct bpf_iter_css_task *it) __ksym;

SEC("iter/cgroup")
int loadavg_cgroup_tasks(struct bpf_iter__cgroup *ctx)
{
	struct cgroup *cgrp = ctx->cgroup;
	struct bpf_iter_css_task it;
	struct task_struct *task;

	if (!cgrp) // the end of the walk
		return 0;
	// The cgroup's own css walks every css_set linked to it, in any
	// hierarchy; flags 0: every thread, not only group leaders.
	bpf_iter_css_task_new(&it, &cgrp->self, 0);
	while ((task = bpf_iter_css_task_next(&it)))
		write_if_counted(ctx->meta->seq, task);
	bpf_iter_css_task_destroy(&it);
	return 0;
}

// GPL-compatible (the source is also GPL-2.0): bpf_seq_write is GPL-only.
char LICENSE[] SEC("license") = "GPL";
