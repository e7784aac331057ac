"""The outer layer: command line, HTTP service, storage and the nightly job. Imports inward only."""
