# Deployable artifacts (tools/package.py, standard library only):
#   dist/functions/{intake,classify,route}.zip + manifest.json, dist/exporter/ (container context),
#   dist/exporter-image-tag and dist/deploy.tfvars.json (pass to terraform with -var-file).
PACKAGE_PYTHON ?= python3

.PHONY: package package-clean

package:
	$(PACKAGE_PYTHON) tools/package.py build

package-clean:
	rm -rf dist/functions dist/exporter dist/exporter-image-tag dist/deploy.tfvars.json
