"""One-line switches for code written against other task libraries: change the imports,
keep the code (``streamflow.compat.dramatiq``, ``streamflow.compat.dramatiq_workflow``)."""
