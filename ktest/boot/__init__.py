"""Booting kernels under virtme-ng: the launcher, host link control (QMP), the guest command and its
results, the pool of guests, the interactive shell."""
