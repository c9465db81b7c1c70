"""The paper's experiments as commands: Table 1 (``table1``: ``jmvae reproduce``) and the speed
benchmark (``bench``: ``jmvae bench``)."""
