"""The compile job: from the command line to a local or remote compile."""
