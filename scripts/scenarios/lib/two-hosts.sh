# Two "hosts" on one machine for the multi-host scenarios (sourced, not run): network
# namespaces A and B joined by a veth pair in a private /30, their own hostnames and (where
# the system allows) a run directory hidden from B, and the mpirun command line that starts one
# rank on each through a generated ssh-like agent. See scripts/scenarios/multihost-test.sh for
# the full description.
#
# The caller defines say, skip and fail (as multihost-test.sh does) and sets tmp to an empty
# temporary directory; afterwards it has: nsA nsB vethA vethB ipA ipB cidr, onA (the prefix
# that runs a command in host A), mpi (mpirun -n 2 across the hosts, to run under onA),
# bounded SECONDS COMMAND..., and an EXIT trap that removes the namespaces and $tmp (plus a
# child started with bounded or left in $child).

id=$(printf '%x%02x' $$ $(( RANDOM % 256 )))   # unique: this pid (hex) and a random byte
nsA=dt-a-$id nsB=dt-b-$id            # namespace names, also the hosts' names
vethA=dtva-$id vethB=dtvb-$id         # interface names: at most 15 characters
net=10.213.77                         # 10.213.77.0/30: exists only inside the two namespaces
ipA=$net.1 ipB=$net.2 cidr=$net.0/30
created=() child=""

# bounded SECONDS COMMAND...: runs COMMAND under timeout, in the background so that a signal to
# this script runs the traps at once (bash defers them while a foreground command runs).
bounded() {
  local s=$1; shift
  timeout -k 10 "$s" "$@" & child=$!
  wait "$child"; local status=$?
  child=""
  return "$status"
}

cleanup() {
  local ns pid
  [[ -n "$child" ]] && kill "$child" 2>/dev/null   # timeout passes the signal on to mpirun
  for ns in "${created[@]}"; do   # processes still in our namespaces (e.g. an orphaned orted)
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
  done
  for ns in "${created[@]}"; do ip netns del "$ns" 2>/dev/null; done   # takes the veth along
  # OpenMPI's session directories, named after our hosts (left behind when mpirun is killed).
  (( ${uts:-0} )) && rm -rf "${TMPDIR:-/tmp}/ompi.$nsA".* "${TMPDIR:-/tmp}/ompi.$nsB".*
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

err=$(ip netns add "$nsA" 2>&1) || skip "cannot create a network namespace: $err"
created+=("$nsA")
err=$(ip netns add "$nsB" 2>&1) || skip "cannot create a network namespace: $err"
created+=("$nsB")
# Created inside A with its peer inside B: the host's own network never sees either end.
err=$(ip -n "$nsA" link add "$vethA" type veth peer name "$vethB" netns "$nsB" 2>&1) ||
  skip "cannot create a veth pair: $err"
{ ip -n "$nsA" addr add "$ipA/30" dev "$vethA" && ip -n "$nsB" addr add "$ipB/30" dev "$vethB" &&
  ip -n "$nsA" link set lo up && ip -n "$nsB" link set lo up &&
  ip -n "$nsA" link set "$vethA" up && ip -n "$nsB" link set "$vethB" up; } 2>"$tmp/setup.err" ||
  fail "configuring the veth pair" "$tmp/setup.err"
for _ in $(seq 1 50); do
  ip -n "$nsA" link show "$vethA" | grep -q LOWER_UP && ip -n "$nsB" link show "$vethB" | grep -q LOWER_UP && break
  sleep 0.1
done

# Own hostnames (UTS namespaces), and the run directory's parent hidden from B, where the
# system allows them. (Not all of /tmp: OpenMPI's orted checks that the agent exists on B.)
mkdir "$tmp/runs"                     # run directories live here; B sees an empty tmpfs instead
uts=0 hide=0
ip netns exec "$nsB" unshare --uts /bin/sh -c "hostname $nsB" >/dev/null 2>&1 && uts=1
ip netns exec "$nsB" /bin/sh -c "mount -t tmpfs -o size=64m tmpfs '$tmp/runs'" >/dev/null 2>&1 && hide=1
(( uts )) || say "note: unshare --uts unavailable: both hosts keep this machine's hostname"
(( hide )) || say "note: cannot mount a tmpfs in B: the run directory is shared"

# Host A: this shell's command runs in A's namespace, under A's hostname.
onA=(ip netns exec "$nsA")
(( uts )) && onA+=(unshare --uts /bin/sh -c 'hostname "$0" || exit 1; exec "$@"' "$nsA")

# The remote agent: OpenMPI calls it like ssh, `agent HOST COMMAND...`, where COMMAND is a shell
# command line (quoting included) for the remote side, so it is run with sh -c.
prepB=""
(( hide )) && prepB+="mount -t tmpfs -o size=64m tmpfs '$tmp/runs' || exit 1; "
(( uts )) && prepB+="hostname $nsB || exit 1; "
prepA=""
(( uts )) && prepA+="hostname $nsA || exit 1; "
agent_uts=""; (( uts )) && agent_uts="unshare --uts"
cat > "$tmp/agent" <<EOF
#!/bin/sh
# plm_rsh_agent for the namespace hosts: agent HOST COMMAND...
host=\$1; shift
echo "\$host: \$*" >> "$tmp/agent.log"
case "\$host" in
  $ipA|$nsA) exec ip netns exec $nsA $agent_uts /bin/sh -c "${prepA}\$*" ;;
  $ipB|$nsB) exec ip netns exec $nsB $agent_uts /bin/sh -c "${prepB}\$*" ;;
  *) echo "multihost agent: unknown host '\$host'" >&2; exit 255 ;;
esac
EOF
chmod +x "$tmp/agent"
printf '# two "hosts": veth addresses in namespaces %s and %s\n%s slots=1\n%s slots=1\n' \
  "$nsA" "$nsB" "$ipA" "$ipB" > "$tmp/hostfile"

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi=(mpirun --allow-run-as-root -n 2 --hostfile "$tmp/hostfile"
     --mca plm rsh --mca plm_rsh_agent "$tmp/agent" --mca plm_rsh_no_tree_spawn 1
     --mca pml ob1 --mca btl "tcp,self"
     --mca btl_tcp_if_include "$cidr" --mca oob_tcp_if_include "$cidr"
     --bind-to none)   # both "hosts" share this machine's cores: don't pin both ranks to core 0

