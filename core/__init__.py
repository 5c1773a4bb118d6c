"""Django project package: settings and the two URL roots (command API, query API). Nothing else."""
