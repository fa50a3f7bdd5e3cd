"""Emergency drills: harmless stimuli that prove the whole alarm chain works, stage by stage."""
