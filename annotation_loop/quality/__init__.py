"""Label quality: who labelled what, where several annotators overlap, how far they agree,
which label training uses, and whether pre-annotations sway the people who see them."""
