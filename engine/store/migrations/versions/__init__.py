"""Migration scripts, one per revision (the package marker keeps them in the installed wheel)."""
