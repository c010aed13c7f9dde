"""Code the tests share (scenes, recordings, references); no tests here."""
