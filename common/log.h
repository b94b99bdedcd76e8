/* SPDX-License-Identifier: MIT */
/*
 * One small logging API with two back ends: stderr with syslog priority
 * prefixes ("<3>...", read by journald) for vmmd and the CLI, and Slurm's own
 * slurm_error/slurm_info inside the SPANK plugin. Pure modules never log:
 * they return a negative errno and the caller logs once.
 */
#ifndef VMENV_LOG_H
#define VMENV_LOG_H

#include <stdarg.h>
#include <syslog.h>

typedef void (*log_sink_f)(int prio, const char *msg);

/* Route every message to sink (NULL restores stderr). */
void log_set_sink(log_sink_f sink);
/* Messages above this priority (LOG_DEBUG is the most verbose) are dropped. */
void log_set_level(int max_prio);
int log_get_level(void);
/* stderr back end: prefix with "<prio>" (for journald) or not (terminal). */
void log_set_prefix_prio(int on);

void log_msg(int prio, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void log_vmsg(int prio, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#define log_err(...)	log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)	log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)	log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)	log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
