"""Load the plugins through their entry points first, as the app does: every module of the
package is then registered, with the installed distribution that ships it."""

from sparseland.registry import load_plugins

load_plugins()
