"""Typed clients from the functions' OpenAPI documents (`fnkit client python|typescript`)."""
