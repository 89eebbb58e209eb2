/*
 * proc.h -- what every child process of the master sets up alike.
 */
#ifndef FB_PROC_H
#define FB_PROC_H

void fb_proc_child_signals(void (*on_stop)(int));

#endif /* FB_PROC_H */
