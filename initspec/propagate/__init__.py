"""Signal propagation: mean-field theory of a scheme through depth, measured on synthetic stacks."""
