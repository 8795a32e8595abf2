"""Shell completion scripts generated from the CLI itself.

``centaurusctl completion bash|zsh|fish`` prints a script built by walking the command
tree (commands, sub-commands, options, which options take a value and the fixed values of
those that list them, such as ``-o``), so completions never drift from the CLI; the copies
in ``completions/`` are regenerated with ``centaurusctl completion --write`` and a test
checks they are current. Kinds and ``serve`` roles are written into the script; what only
the cluster knows comes at completion time from the hidden ``centaurusctl __names WHAT``
(:func:`complete_names`): object names of a kind (in the ``-n`` namespace and ``--context``
already typed), namespaces, tenants, and the kubeconfig's contexts. It lists with a short
timeout and prints nothing when the cluster is unreachable. The bash script skips global
flags and their values while it finds the command path (``centaurusctl -n demo get po``);
zsh uses the bash script through ``bashcompinit``; fish gets the same tree as conditions."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer
import yaml

from ctl.cli import output
from ctl.types import kinds

# what the word after a command is: a kind (then names of it), a pod, a context, a role
KIND_COMMANDS = {"get", "describe", "delete", "label", "annotate"}
POD_COMMANDS = {"logs", "exec", "attach", "port-forward", "cp"}
CONTEXT_COMMANDS = {"config use-context", "config delete-context"}
# value-taking options whose values come from the cluster (or the kubeconfig) at completion time
DYNAMIC_VALUES = {
    "-n": "namespaces",
    "--namespace": "namespaces",
    "--context": "contexts",
    "--tenant": "tenants",
}
FILE_VALUES = {"-f", "--filename", "--kubeconfig", "--from-file", "--data-dir"}
REPO_COMPLETIONS = Path(__file__).resolve().parent.parent.parent / "completions"


def _tree(app: typer.Typer) -> dict[str, Any]:
    """The command tree: per command its options, which of them take a value, and the values
    of those with a fixed set (``-o table|wide|...``, read from the option's ``a|b|c`` help)."""
    import typer.main

    root = typer.main.get_command(app)

    def walk(cmd: Any) -> dict[str, Any]:
        opts: list[str] = []
        valued: list[str] = []
        choices: dict[str, list[str]] = {}
        for p in getattr(cmd, "params", []):
            if getattr(p, "param_type_name", "") != "option" or getattr(p, "hidden", False):
                continue
            names = [o for o in [*p.opts, *getattr(p, "secondary_opts", [])] if o.startswith("-")]
            opts += names
            if not p.is_flag:
                valued += names
                h = p.help or ""
                if "|" in h and " " not in h:
                    vals = h.split("|")
                    if "name" in vals and "yaml" in vals:  # get's object formats take templates too
                        vals += [f"{t}=" for t in output.TEMPLATE_FORMATS]
                    choices.update({n: vals for n in names})
        subs = {}
        for name, sub in sorted((getattr(cmd, "commands", None) or {}).items()):
            if getattr(sub, "hidden", False) or name.startswith("__"):
                continue
            subs[name] = walk(sub)
        return {
            "options": sorted(set(opts + ["--help"])),
            "valued": sorted(set(valued)),
            "choices": choices,
            "commands": subs,
        }

    return walk(root)


def kind_words() -> list[str]:
    words = set()
    for k in kinds.KINDS:
        words.update([k.plural, k.singular, *k.short])
    return sorted(words)


def serve_roles() -> list[str]:
    """The roles ``serve`` runs: the control-side ones and the ``centaurus.roles`` entry points."""
    from importlib.metadata import entry_points

    from ctl.cli.serve_cmd import CTL_ROLES

    return sorted(set(CTL_ROLES) | {ep.name for ep in entry_points(group="centaurus.roles")})


def _nodes(tree: dict[str, Any], path: list[str] | None = None) -> list[tuple[str, dict[str, Any]]]:
    path = path or []
    out = [(" ".join(path), tree)]
    for name, sub in tree["commands"].items():
        out += _nodes(sub, [*path, name])
    return out


def _all_valued(tree: dict[str, Any]) -> list[str]:
    return sorted({o for _, n in _nodes(tree) for o in n["valued"]})


def bash(tree: dict[str, Any]) -> str:
    nodes = _nodes(tree)
    words_cases = "\n".join(
        f'        "{key}") words="{" ".join(list(node["commands"]) + node["options"])}" ;;'
        for key, node in nodes
    )
    path_cases = "\n".join(f'            "{key}") path="{key}" ;;' for key, _ in nodes if key)
    groups = "|".join(f'"{key}"' for key, node in nodes if node["commands"])
    choice_cases = "\n".join(
        f'            "{key}|{opt}") words="{" ".join(vals)}" ;;'
        for key, node in nodes
        for opt, vals in sorted(node["choices"].items())
    )
    valued = "|".join(o for o in _all_valued(tree) if o not in DYNAMIC_VALUES)
    dyn = "\n".join(
        f'            {o}) words="$(_centaurusctl_names {w})" ;;' for o, w in DYNAMIC_VALUES.items()
    )
    files = "|".join(sorted(FILE_VALUES))
    return f"""# bash completion for centaurusctl (generated by 'centaurusctl completion bash'; do not edit)
# Commands, flags, -o values and kinds are in this script; namespaces, object names, contexts and
# tenants come from the cluster through the hidden 'centaurusctl __names WHAT' (silent when unreachable).
_centaurusctl_names() {{
    centaurusctl __names "$1" ${{_centaurusctl_ns:+-n "$_centaurusctl_ns"}} ${{_centaurusctl_ctx:+--context "$_centaurusctl_ctx"}} 2>/dev/null
}}
_centaurusctl() {{
    local cur prev path w words i nargs first
    local _centaurusctl_ns="" _centaurusctl_ctx=""
    cur="${{COMP_WORDS[COMP_CWORD]}}"
    prev=""
    ((COMP_CWORD > 1)) && prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    path=""
    nargs=0
    first=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${{COMP_WORDS[i]}}"
        case "$w" in
            -n|--namespace) ((i++)); _centaurusctl_ns="${{COMP_WORDS[i]}}"; continue ;;
            --context) ((i++)); _centaurusctl_ctx="${{COMP_WORDS[i]}}"; continue ;;
            --namespace=*) _centaurusctl_ns="${{w#*=}}"; continue ;;
            --context=*) _centaurusctl_ctx="${{w#*=}}"; continue ;;
            --tenant) ((i++)); continue ;;
            {valued}) ((i++)); continue ;;
            -*) continue ;;
        esac
        if ((nargs == 0)); then
            case "${{path:+$path }}$w" in
{path_cases}
                *)
                    case "$path" in
                        {groups}) COMPREPLY=(); return ;;
                    esac
                    nargs=1; first="$w" ;;
            esac
        else
            ((nargs++))
        fi
    done
    words=""
    if [[ -n "$prev" && "$prev" == -* && "$cur" != -* ]]; then
        case "$prev" in
{dyn}
            {files}) COMPREPLY=($(compgen -f -- "$cur")); return ;;
            {valued})
                case "$path|$prev" in
{choice_cases}
                esac
                COMPREPLY=($(compgen -W "$words" -- "$cur"))
                return ;;
        esac
        if [[ -n "$words" ]]; then COMPREPLY=($(compgen -W "$words" -- "$cur")); return; fi
    fi
    if ((nargs == 0)) || [[ "$cur" == -* ]]; then
        case "$path" in
{words_cases}
            *) words="" ;;
        esac
    fi
    if [[ "$cur" != -* ]]; then
        case "$path" in
            {"|".join(sorted(KIND_COMMANDS))})
                if ((nargs == 0)); then
                    if [[ "$cur" == */* ]]; then
                        local kind="${{cur%%/*}}" n
                        words=""
                        for n in $(_centaurusctl_names "$kind"); do words="$words $kind/$n"; done
                    else
                        words="$words {" ".join(kind_words())}"
                    fi
                elif [[ "$first" != */* ]]; then
                    words="$(_centaurusctl_names "$first")"
                fi ;;
            {"|".join(sorted(POD_COMMANDS))})
                ((nargs == 0)) && words="$(_centaurusctl_names pods)" ;;
            {"|".join(f'"{c}"' for c in sorted(CONTEXT_COMMANDS))})
                ((nargs == 0)) && words="$(_centaurusctl_names contexts)" ;;
            serve)
                ((nargs == 0)) && words="{" ".join(serve_roles())}" ;;
        esac
    fi
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -F _centaurusctl centaurusctl
"""


def zsh(tree: dict[str, Any]) -> str:
    return f"""#compdef centaurusctl
# zsh completion for centaurusctl (generated by 'centaurusctl completion zsh'; do not edit)
autoload -U +X bashcompinit && bashcompinit
{bash(tree)}"""


def fish(tree: dict[str, Any]) -> str:
    """A fish script: the same tree as conditions on the words seen; server names through ``__names``."""
    valued = " ".join(_all_valued(tree))
    lines = [
        "# fish completion for centaurusctl (generated by 'centaurusctl completion fish'; do not edit)",
        "# Commands, flags, -o values and kinds are in this script; namespaces, object names, contexts and",
        "# tenants come from the cluster through the hidden 'centaurusctl __names WHAT' (silent when unreachable).",
        "complete -c centaurusctl -f",
        "function __centaurusctl_args --description 'the words after the command path that are not options'",
        "    set -l toks (commandline -opc)",
        "    set -e toks[1]",
        f"    set -l valued {valued}",
        "    set -l skip 0",
        "    set -l path",
        "    set -l out",
        "    for t in $toks",
        "        if test $skip = 1",
        "            set skip 0",
        "        else if contains -- $t $valued",
        "            set skip 1",
        "        else if string match -q -- '-*' $t",
        '        else if test (count $out) = 0; and contains -- "$path $t" $argv',
        '            set path "$path $t"',
        "        else",
        "            set -a out $t",
        "        end",
        "    end",
        "    string join \\n -- $out",
        "end",
        "function __centaurusctl_opt --description 'the value given to an option on the command line'",
        "    set -l toks (commandline -opc)",
        "    for i in (seq (count $toks))",
        "        if contains -- $toks[$i] $argv; and test $i -lt (count $toks)",
        "            echo $toks[(math $i + 1)]",
        "        end",
        "    end",
        "end",
        "function __centaurusctl_names",
        "    set -l extra",
        "    set -l ns (__centaurusctl_opt -n --namespace)",
        "    set -l ctx (__centaurusctl_opt --context)",
        '    test -n "$ns"; and set -a extra -n $ns[-1]',
        '    test -n "$ctx"; and set -a extra --context $ctx[-1]',
        "    centaurusctl __names $argv[1] $extra 2>/dev/null | string split ' '",
        "end",
    ]
    paths = " ".join(f"' {k}'" for k, _ in _nodes(tree) if k)
    top = tree["commands"]
    names = " ".join(top)
    lines.append(f'complete -c centaurusctl -n "not __fish_seen_subcommand_from {names}" -a "{names}"')
    for o, what in DYNAMIC_VALUES.items():
        flag = f"-l {o[2:]}" if o.startswith("--") else f"-s {o[1:]}"
        lines.append(f'complete -c centaurusctl {flag} -x -a "(__centaurusctl_names {what})"')
    for o in sorted(FILE_VALUES):
        lines.append(f"complete -c centaurusctl -l {o[2:]} -r -F")
    for key, node in _nodes(tree):
        if not key:
            continue
        cond = f"__fish_seen_subcommand_from {key.split()[-1]}"
        if len(key.split()) > 1:
            cond = f"__fish_seen_subcommand_from {key.split()[0]}; and {cond}"
        subs = " ".join(node["commands"])
        if subs:
            lines.append(
                f'complete -c centaurusctl -n "{cond}; and not __fish_seen_subcommand_from {subs}" -a "{subs}"'
            )
        for o in node["options"]:
            if o in DYNAMIC_VALUES or o in FILE_VALUES:
                continue
            flag = f"-l {o[2:]}" if o.startswith("--") else f"-s {o[1:]}"
            extra = ""
            if o in node["choices"]:
                extra = f' -x -a "{" ".join(node["choices"][o])}"'
            elif o in node["valued"]:
                extra = " -x"
            lines.append(f'complete -c centaurusctl -n "{cond}" {flag}{extra}')
    kinds_s = " ".join(kind_words())
    nargs = f"count (__centaurusctl_args {paths})"
    for c in sorted(KIND_COMMANDS):
        seen = f"__fish_seen_subcommand_from {c}"
        lines.append(f'complete -c centaurusctl -n "{seen}; and test ({nargs}) = 0" -a "{kinds_s}"')
        lines.append(
            f'complete -c centaurusctl -n "{seen}; and test ({nargs}) = 1" '
            f'-a "(__centaurusctl_names (__centaurusctl_args {paths})[1])"'
        )
    for c in sorted(POD_COMMANDS):
        if c in top:
            lines.append(
                f'complete -c centaurusctl -n "__fish_seen_subcommand_from {c}; and test ({nargs}) = 0" '
                '-a "(__centaurusctl_names pods)"'
            )
    for c in sorted(CONTEXT_COMMANDS):
        g, sub = c.split()
        lines.append(
            f'complete -c centaurusctl -n "__fish_seen_subcommand_from {g}; and __fish_seen_subcommand_from {sub}; '
            f'and test ({nargs}) = 0" -a "(__centaurusctl_names contexts)"'
        )
    lines.append(
        f'complete -c centaurusctl -n "__fish_seen_subcommand_from serve; and test ({nargs}) = 0" '
        f'-a "{" ".join(serve_roles())}"'
    )
    return "\n".join(lines) + "\n"


GENERATORS = {
    "bash": (bash, "centaurusctl.bash"),
    "zsh": (zsh, "_centaurusctl"),
    "fish": (fish, "centaurusctl.fish"),
}


def generate(shell: str, app: typer.Typer) -> str:
    return GENERATORS[shell][0](_tree(app))


def complete_names(what: str, namespace: str | None = None, context: str | None = None) -> list[str]:
    """What ``__names WHAT`` prints: the kubeconfig's contexts, or the names of objects of a kind
    (in ``namespace``, else the context's) on the cluster of ``context``; nothing when unreachable."""
    from ctl.client import Client
    from ctl.client.kubeconfig import kubeconfig_path, load

    if what == "contexts":
        try:
            doc = yaml.safe_load(kubeconfig_path(None).read_text()) or {}
            return [
                str(c.get("name")) for c in doc.get("contexts") or [] if isinstance(c, dict) and c.get("name")
            ]
        except (OSError, yaml.YAMLError, AttributeError):
            return []
    k = kinds.resolve(what)
    if k is None:
        return []
    try:
        client = Client(load(None, context), timeout=2)
    except Exception:
        return []

    async def go() -> list[str]:
        try:
            ns = (namespace or client.config.namespace) if k.namespaced else None
            lst = await client.list(k, namespace=ns)
            return [o["metadata"]["name"] for o in lst["items"]]
        except Exception:
            return []
        finally:
            await client.close()

    return asyncio.run(go())


def register(app: typer.Typer) -> None:
    @app.command("completion")
    def completion(
        shell: str = typer.Argument("bash", help="bash|zsh|fish"),
        write: bool = typer.Option(False, "--write", help="regenerate every script in completions/"),
    ) -> None:
        """Print a shell completion script (bash, zsh or fish).

        Examples:
          source <(centaurusctl completion bash)
          centaurusctl completion zsh > "${fpath[1]}/_centaurusctl"
          centaurusctl completion fish > ~/.config/fish/completions/centaurusctl.fish
        """
        from ctl.cli.errors import CLIError

        if write:
            REPO_COMPLETIONS.mkdir(exist_ok=True)
            for sh, (_, fname) in GENERATORS.items():
                (REPO_COMPLETIONS / fname).write_text(generate(sh, app))
                print(f"wrote {REPO_COMPLETIONS / fname}")
            return
        if shell not in GENERATORS:
            raise CLIError(f"unsupported shell {shell!r}: use bash, zsh or fish")
        print(generate(shell, app), end="")

    @app.command("__names", hidden=True)
    def names(
        what: str,
        namespace: str = typer.Option(None, "-n", "--namespace"),
        context: str = typer.Option(None, "--context"),
    ) -> None:
        """Names for completion: objects of a kind, or ``contexts`` of the kubeconfig (quietly nothing on error)."""
        print(" ".join(complete_names(what, namespace, context)))
