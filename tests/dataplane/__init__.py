"""Data plane tests: BPF_PROG_TEST_RUN unit tests and multi-host functional tests."""
