"""What a reviewer reads: the outputs of a result (HTML, JUnit, KCIDB, summary.md), the history
database and its trends page."""
