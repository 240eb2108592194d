"""Closeloop's composition root: runs the four services together (embedded) or one part of one."""
