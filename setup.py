"""Builds the one compiled module (the Schur-complement kernels); metadata is in pyproject.toml."""

from Cython.Build import cythonize
from setuptools import Extension, setup

extension = Extension(
    "sparselme.engine._gram",
    ["sparselme/engine/_gram.pyx"],
    extra_compile_args=["-O3", "-fopenmp"],
    extra_link_args=["-fopenmp"],
)
setup(ext_modules=cythonize([extension], language_level=3))
