"""The scheduler's control protocol (daemons, clients, operators), sans-IO."""
