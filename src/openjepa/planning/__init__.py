"""Planning in latent space: CEM and MPPI over action sequences (batched over problems), and the MPC loop."""
