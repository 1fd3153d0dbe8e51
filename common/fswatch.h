/*
 * Change detection for configuration files and folders, by polling.
 *
 * A daemon that must reload when a file changes (policies, routes) keeps
 * the fingerprint of its inputs and compares it now and then.  Polling
 * stat(2) is used instead of inotify because it also sees the changes
 * inotify misses in practice: a folder replaced through a symlink swap
 * (Kubernetes ConfigMaps), files on network filesystems, and editors that
 * write a new file and rename it over the old one.
 */
#ifndef AAM_COMMON_FSWATCH_H
#define AAM_COMMON_FSWATCH_H

#include <stddef.h>
#include <stdint.h>

/*
 * Fingerprints PATHS (NULL entries are skipped): for a file its inode,
 * size and modification time; for a folder the same for every entry
 * (names sorted, hidden entries skipped), one level deep.  A path that
 * does not exist contributes a marker, so its appearance is a change too.
 * Returns the fingerprint; equal inputs give equal values.
 */
uint64_t aam_fswatch_fingerprint(const char *const *paths, size_t n);

#endif /* AAM_COMMON_FSWATCH_H */
