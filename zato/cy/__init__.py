"""Compiled (Cython) builds of the modules listed in zato.accel.EXTENSIONS land here."""
