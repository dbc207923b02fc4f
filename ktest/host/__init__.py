"""The host side of a kernel: the tree (Debian source or the user's checkout, never modified), the
series, the kconfig fragments and the cached builds."""
