"""The compiler wrapper `ccfarm`: runs once per compile job, so imports stay lean."""
