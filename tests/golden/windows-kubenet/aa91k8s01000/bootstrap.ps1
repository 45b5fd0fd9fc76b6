# hke: bootstrap of Windows node 'aa91k8s01000' (pool 'windowspool1', Windows Server '2022').
# Delivered as user data. Every step is logged with a timestamp to
# C:\k\logs\hke-bootstrap.log and the serial console (COM1); the first failure
# stops the script with a non-zero exit code. The Containers feature needs a
# reboot: the script registers itself to run again at startup and skips the
# steps already done.
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
# Windows PowerShell 5.1 on Server 2019 may not offer TLS 1.2 by default, and
# the download hosts require it (kube-up's configure.ps1 does the same).
[Net.ServicePointManager]::SecurityProtocol = [Net.ServicePointManager]::SecurityProtocol -bor [Net.SecurityProtocolType]::Tls12

$NodeName = 'aa91k8s01000'
if (-not $NodeName) {
    # An instance of a machine group: named after its host (as kubeadm
    # names a node by default: the host name, lowercased).
    $NodeName = $env:COMPUTERNAME.ToLowerInvariant()
}
$KubernetesVersion = '1.36.4'
$BinariesBaseUrl = 'https://dl.k8s.io'
$ContainerdVersion = '2.2.4'
$ContainerdUrl = 'https://github.com/containerd/containerd/releases/download/v2.2.4/containerd-2.2.4-windows-amd64.tar.gz'
$PauseImage = 'registry.k8s.io/pause:3.10.1'
# containerd's platform syntax: os(osversion)/arch (containerd/platforms Parse).
$PausePlatform = 'windows(10.0.20348)/amd64'
$AlwaysPullPause = ('false' -eq 'true')
$NetworkPlugin = 'kubenet'
$Overlay = ('false' -eq 'true')
$HnsNetworkName = 'l2bridge'
$ApiServer = 'kubernetes-windows.westus2.cloudapp.azure.com'
$ApiServerPort = '6443'
$Token = '<token>'
$CaCertHash = '<ca-hash>'
$CniPluginsUrl = 'https://github.com/containernetworking/plugins/releases/download/v1.7.1/cni-plugins-windows-amd64-v1.7.1.tgz'
$CniFileName = '10-l2bridge.conflist'
$FlannelCniUrl = ''
$FlanneldUrl = ''
$SshEnabled = ('true' -eq 'true')
$HyperV = ('false' -eq 'true')
# The services' command lines, rendered by hke; __HKE_NODE_NAME__ and
# __HKE_SOURCE_VIP__ are filled in here once known.
$KubeletArgs = @(
    '--windows-service'
    '--config=C:\var\lib\kubelet\config.yaml'
    '--bootstrap-kubeconfig=C:\etc\kubernetes\bootstrap-kubelet.conf'
    '--kubeconfig=C:\etc\kubernetes\kubelet.conf'
    '--cert-dir=C:\var\lib\kubelet\pki'
    '--container-runtime-endpoint=npipe:////./pipe/containerd-containerd'
    '--hostname-override=aa91k8s01000'
    '--node-labels=agentpool=windowspool1,hke.io/pool=windowspool1'
    '--cluster-dns=10.0.0.10'
    '--cluster-domain=cluster.local'
    '--event-qps=0'
    '--image-gc-high-threshold=85'
    '--image-gc-low-threshold=80'
    '--max-pods=110'
    '--read-only-port=0'
    '--rotate-certificates=true'
    '--streaming-connection-idle-timeout=4h'
    '--cgroups-per-qos=false'
    '--enforce-node-allocatable='
    '--resolv-conf='
)
$KubeProxyArgs = @(
    '--windows-service'
    '--kubeconfig=C:\k\kube-proxy.conf'
    '--hostname-override=aa91k8s01000'
    '--proxy-mode=kernelspace'
    '--network-name=l2bridge'
    '--cluster-cidr=10.244.0.0/16'
    '--v=2'
)
$FlanneldArgs = @(
)
$SshKeys = @(
    '<ssh-public-key>'
)
# The files this node gets (containerd's configuration, CNI, kubeconfigs),
# rendered by hke (text, as PowerShell literals: EC2's 16 KiB user-data
# limit applies after compression, and base64 does not compress).
$NodeFiles = @(
    @{ Path = 'C:\Program Files\containerd\config.toml'; Secret = ('false' -eq 'true'); Content = <see files/C/Program Files/containerd/config.toml> }
    @{ Path = 'C:\k\kube-proxy.conf'; Secret = ('true' -eq 'true'); Content = <see files/C/k/kube-proxy.conf> }
    @{ Path = 'C:\etc\cni\net.d\10-l2bridge.conflist'; Secret = ('false' -eq 'true'); Content = <see files/C/etc/cni/net.d/10-l2bridge.conflist> }
)

$KDir = 'C:\k'
$LogDir = Join-Path $KDir 'logs'
$StateDir = Join-Path $KDir 'hke-state'
$LogFile = Join-Path $LogDir 'hke-bootstrap.log'
$Self = Join-Path $KDir 'hke-bootstrap.ps1'
$CniBin = 'C:\opt\cni\bin'
$CniConf = 'C:\etc\cni\net.d'
$ContainerdDir = Join-Path $env:ProgramFiles 'containerd'
$CriSocket = 'npipe:////./pipe/containerd-containerd'
New-Item -ItemType Directory -Force -Path $KDir, $LogDir, $StateDir, $CniBin, $CniConf | Out-Null

# kubeadm's preflight runs `kubelet --version` from PATH (preflight
# KubeletVersionCheck), and so do operators: C:\k goes on the machine Path,
# and on this process's, every run (sig-windows-tools' PrepareNode.ps1 does
# the same).
$machinePath = [Environment]::GetEnvironmentVariable('Path', [EnvironmentVariableTarget]::Machine)
if (($machinePath -split ';') -notcontains $KDir) {
    [Environment]::SetEnvironmentVariable('Path', ($machinePath.TrimEnd(';') + ';' + $KDir), [EnvironmentVariableTarget]::Machine)
}
if (($env:Path -split ';') -notcontains $KDir) {
    $env:Path = $env:Path.TrimEnd(';') + ';' + $KDir
}

function Write-Log {
    param([string]$Message)
    $line = '{0} hke: {1}' -f (Get-Date -Format o), $Message
    Add-Content -Path $LogFile -Value $line
    try {
        $port = New-Object System.IO.Ports.SerialPort 'COM1', 115200
        $port.Open()
        $port.WriteLine($line)
        $port.Close()
    } catch {
        # No serial console: the log file still has the line.
    }
    Write-Output $line
}

# Diagnostics for `hke logs` (no RDP or SSH needed): the node's logs, HNS
# state and recent System errors, printed to COM1 in marked sections every 5
# minutes and when bootstrap ends or fails.
$Diagnostics = Join-Path $KDir 'hke-diagnostics.ps1'
Set-Content -Path $Diagnostics -Encoding UTF8 -Value @'
$ErrorActionPreference = 'Continue'
function Write-Section {
    param([string]$Name, [scriptblock]$Body)
    $text = try { & $Body 2>&1 | Out-String -Width 240 } catch { $_.Exception.Message }
    $lines = @('### hke-log-begin ' + $Name) + @(($text -split "`r?`n") | Select-Object -Last 200) + @('### hke-log-end ' + $Name)
    try {
        $port = New-Object System.IO.Ports.SerialPort 'COM1', 115200
        $port.Open()
        foreach ($line in $lines) {
            $port.WriteLine($line)
        }
        $port.Close()
    } catch {
        # No serial console.
    }
}
Write-Section 'hke-bootstrap.log' { Get-Content -Tail 200 -Path 'C:\k\logs\hke-bootstrap.log' }
# kubelet, containerd, kube-proxy and CNI logs, wherever they are written.
$logs = @(Get-ChildItem -Path 'C:\k\logs', 'C:\k' -Filter '*.log' -File -ErrorAction SilentlyContinue | Where-Object { $_.Name -ne 'hke-bootstrap.log' })
foreach ($log in $logs) {
    Write-Section $log.Name { Get-Content -Tail 200 -Path $log.FullName }
}
Write-Section 'services.txt' { Get-Service -Name kubelet, containerd, kube-proxy -ErrorAction SilentlyContinue | Format-Table -AutoSize Name, Status, StartType }
Write-Section 'hns-networks.json' { Get-HnsNetwork | ConvertTo-Json -Depth 4 }
Write-Section 'hns-endpoints.json' { Get-HnsEndpoint | ConvertTo-Json -Depth 4 }
Write-Section 'hns-policies.json' { Get-HnsPolicyList | ConvertTo-Json -Depth 4 }
Write-Section 'system-errors.txt' { Get-WinEvent -LogName System -MaxEvents 50 -FilterXPath '*[System[(Level=1 or Level=2)]]' | Format-List TimeCreated, Id, ProviderName, Message }
'@
$diagnosticsAction = New-ScheduledTaskAction -Execute 'powershell.exe' -Argument ('-NoProfile -ExecutionPolicy Bypass -File "' + $Diagnostics + '"')
$diagnosticsTrigger = New-ScheduledTaskTrigger -Once -At (Get-Date) -RepetitionInterval (New-TimeSpan -Minutes 5)
Register-ScheduledTask -TaskName 'hke-diagnostics' -Action $diagnosticsAction -Trigger $diagnosticsTrigger -User 'SYSTEM' -RunLevel Highest -Force | Out-Null

function Invoke-Diagnostics {
    try {
        & powershell.exe -NoProfile -ExecutionPolicy Bypass -File $Diagnostics | Out-Null
    } catch {
        Write-Log ('diagnostics failed: ' + $_.Exception.Message)
    }
}

function Invoke-Step {
    param([string]$Name, [scriptblock]$Body)
    $marker = Join-Path $StateDir ($Name + '.done')
    if (Test-Path $marker) {
        Write-Log ('step ' + $Name + ': already done')
        return
    }
    Write-Log ('step ' + $Name + ': start')
    & $Body
    New-Item -ItemType File -Force -Path $marker | Out-Null
    Write-Log ('step ' + $Name + ': done')
}

function Invoke-Native {
    param([string]$Exe, [string[]]$Arguments)
    & $Exe @Arguments
    if ($LASTEXITCODE -ne 0) {
        throw ('{0} failed with exit code {1}' -f $Exe, $LASTEXITCODE)
    }
}

# Download a file and check it against the SHA-256 published beside it.
function Get-VerifiedFile {
    param([string]$Url, [string]$Path)
    Invoke-WebRequest -UseBasicParsing -Uri $Url -OutFile $Path
    $sum = (Invoke-WebRequest -UseBasicParsing -Uri ($Url + '.sha256')).Content
    if ($sum -is [byte[]]) {
        $sum = [System.Text.Encoding]::ASCII.GetString($sum)
    }
    $expected = ($sum.Trim() -split '\s+')[0].ToLowerInvariant()
    $actual = (Get-FileHash -Algorithm SHA256 -Path $Path).Hash.ToLowerInvariant()
    if ($actual -ne $expected) {
        throw ('SHA-256 mismatch for {0}: expected {1}, got {2}' -f $Url, $expected, $actual)
    }
    Write-Log ('verified ' + $Url)
}

# Reboot and carry on: run this script again at startup, with the step
# that needed the reboot marked done.
function Restart-AndResume {
    param([string]$Step, [string]$Why)
    $action = New-ScheduledTaskAction -Execute 'powershell.exe' -Argument ('-NoProfile -ExecutionPolicy Bypass -File "' + $Self + '"')
    $trigger = New-ScheduledTaskTrigger -AtStartup
    Register-ScheduledTask -TaskName 'hke-bootstrap' -Action $action -Trigger $trigger -User 'SYSTEM' -RunLevel Highest -Force | Out-Null
    New-Item -ItemType File -Force -Path (Join-Path $StateDir ($Step + '.done')) | Out-Null
    Write-Log ('rebooting to finish ' + $Why + '; this script runs again at startup')
    Restart-Computer -Force
    exit 0
}

# HNS changes can take away the route to the cloud's metadata service.
function Restore-MetadataRoute {
    $metadata = '169.254.169.254/32'
    if (Get-NetRoute -DestinationPrefix $metadata -ErrorAction SilentlyContinue) {
        return
    }
    $default = Get-NetRoute -DestinationPrefix '0.0.0.0/0' | Sort-Object -Property RouteMetric | Select-Object -First 1
    New-NetRoute -DestinationPrefix $metadata -InterfaceIndex $default.InterfaceIndex -NextHop $default.NextHop -RouteMetric 1 | Out-Null
    Write-Log ('restored the metadata route via ' + $default.NextHop)
}

# The node's own IPv4 address: the one on the interface of the default route.
function Get-NodeAddress {
    $default = Get-NetRoute -DestinationPrefix '0.0.0.0/0' | Sort-Object -Property RouteMetric | Select-Object -First 1
    (Get-NetIPAddress -InterfaceIndex $default.InterfaceIndex -AddressFamily IPv4 | Select-Object -First 1).IPAddress
}

# The address `Offset` after the network address of a CIDR (the host bits of
# the given address are cleared first).
function Get-AddressInRange {
    param([string]$Cidr, [int]$Offset)
    $address, $bits = $Cidr -split '/'
    $bytes = ([System.Net.IPAddress]::Parse($address)).GetAddressBytes()
    [Array]::Reverse($bytes)
    $value = [uint64][BitConverter]::ToUInt32($bytes, 0)
    $mask = [uint64]0
    if ([int]$bits -gt 0) {
        $mask = ([uint64]0xFFFFFFFF -shl (32 - [int]$bits)) -band [uint64]0xFFFFFFFF
    }
    $value = ($value -band $mask) + [uint64]$Offset
    $out = [BitConverter]::GetBytes([uint32]$value)
    [Array]::Reverse($out)
    ([System.Net.IPAddress]::new($out)).ToString()
}

# Creating HNS objects: Windows' inbox HostNetworkingService module only
# reads and removes them, so hke calls HNS itself, the way microsoft/SDN's
# hns.psm1 does (vmcompute.dll HNSCall: JSON in, {Success, Error, Output} out).
function Invoke-Hns {
    param([string]$Method, [string]$Path, [hashtable]$Body)
    if (-not ('HkeHns' -as [type])) {
        Add-Type -TypeDefinition @'
using System.Runtime.InteropServices;
public static class HkeHns {
    [DllImport("vmcompute.dll")]
    public static extern void HNSCall(
        [MarshalAs(UnmanagedType.LPWStr)] string method,
        [MarshalAs(UnmanagedType.LPWStr)] string path,
        [MarshalAs(UnmanagedType.LPWStr)] string request,
        [MarshalAs(UnmanagedType.LPWStr)] out string response);
}
'@
    }
    $request = ''
    if ($Body) {
        $request = $Body | ConvertTo-Json -Depth 10 -Compress
    }
    $response = ''
    [HkeHns]::HNSCall($Method, $Path, $request, [ref]$response)
    $answer = $response | ConvertFrom-Json
    if (-not $answer.Success) {
        throw ('HNS {0} {1} failed: {2}' -f $Method, $Path, $answer.Error)
    }
    $answer.Output
}

function New-HkeHnsNetwork {
    param([string]$Name, [string]$Type, [string]$AddressPrefix, [string]$Gateway)
    Write-Log ('creating HNS network ' + $Name + ' (' + $Type + ', ' + $AddressPrefix + ')')
    Invoke-Hns -Method 'POST' -Path '/networks/' -Body @{ Name = $Name; Type = $Type; Subnets = @(@{ AddressPrefix = $AddressPrefix; GatewayAddress = $Gateway }) }
}

# One run at a time: GCE runs its startup script at every boot, next to the
# scheduled task this script registers for the run after its reboot.
$BootstrapLock = New-Object System.Threading.Mutex($false, 'Global\hke-bootstrap')
try {
    [void]$BootstrapLock.WaitOne()
} catch [System.Threading.AbandonedMutexException] {
    # The previous holder died; the mutex is ours now.
}

try {
    # Keep a copy to run again after the reboot. Run from a file (EC2Launch,
    # GCE's startup scripts) the script copies that file; run as a script
    # block (Azure custom data through a loader), it writes its own text.
    if (-not (Test-Path $Self)) {
        if ($PSCommandPath) {
            Copy-Item -Path $PSCommandPath -Destination $Self -Force
        } else {
            Set-Content -Path $Self -Value $MyInvocation.MyCommand.Definition
        }
    }

    Invoke-Step 'containers-feature' {
        $result = Install-WindowsFeature -Name Containers
        if ($result.RestartNeeded -eq 'Yes') {
            Restart-AndResume -Step 'containers-feature' -Why 'the Containers feature'
        }
    }

    if ($HyperV) {
        Invoke-Step 'hyperv-feature' {
            $result = Install-WindowsFeature -Name Hyper-V
            if ($result.RestartNeeded -eq 'Yes') {
                Restart-AndResume -Step 'hyperv-feature' -Why 'the Hyper-V feature'
            }
        }
    }

    if ($SshEnabled) {
        Invoke-Step 'openssh' {
            Add-WindowsCapability -Online -Name 'OpenSSH.Server~~~~0.0.1.0' | Out-Null
            $keys = Join-Path $env:ProgramData 'ssh\administrators_authorized_keys'
            New-Item -ItemType Directory -Force -Path (Split-Path $keys) | Out-Null
            Set-Content -Path $keys -Value $SshKeys
            Invoke-Native 'icacls.exe' @($keys, '/inheritance:r', '/grant', 'Administrators:F', '/grant', 'SYSTEM:F')
            Set-Service -Name sshd -StartupType Automatic
            Start-Service sshd
        }
    }

    # Every file hke rendered for this node, once (later steps fill in what
    # only the node knows); files with secrets readable by SYSTEM and
    # Administrators only.
    Invoke-Step 'files' {
        foreach ($file in $NodeFiles) {
            New-Item -ItemType Directory -Force -Path (Split-Path -Parent $file.Path) | Out-Null
            [System.IO.File]::WriteAllText($file.Path, $file.Content, (New-Object System.Text.UTF8Encoding $false))
            if ($file.Secret) {
                Invoke-Native 'icacls.exe' @($file.Path, '/inheritance:r', '/grant:r', 'SYSTEM:F', '/grant:r', 'Administrators:F')
            }
        }
    }

    Invoke-Step 'containerd' {
        $archive = Join-Path $env:TEMP 'containerd.tar.gz'
        Invoke-WebRequest -UseBasicParsing -Uri $ContainerdUrl -OutFile $archive
        $sums = (Invoke-WebRequest -UseBasicParsing -Uri ($ContainerdUrl + '.sha256sum')).Content
        if ($sums -is [byte[]]) {
            $sums = [System.Text.Encoding]::ASCII.GetString($sums)
        }
        $expected = ($sums.Trim() -split '\s+')[0].ToLowerInvariant()
        if ((Get-FileHash -Algorithm SHA256 -Path $archive).Hash.ToLowerInvariant() -ne $expected) {
            throw ('SHA-256 mismatch for ' + $ContainerdUrl)
        }
        New-Item -ItemType Directory -Force -Path $ContainerdDir | Out-Null
        Invoke-Native 'tar.exe' @('-xzf', $archive, '-C', $ContainerdDir, '--strip-components=1')
        # config.toml is one of the node's files (written above).
        Invoke-Native (Join-Path $ContainerdDir 'containerd.exe') @('--register-service')
        Start-Service containerd
    }

    Invoke-Step 'kubernetes-binaries' {
        # kube-log-runner keeps the services' logs in files (klog's own file
        # flags are gone); it is built with the node binaries.
        foreach ($binary in @('kubelet.exe', 'kubeadm.exe', 'kube-proxy.exe', 'kubectl.exe', 'kube-log-runner.exe')) {
            $url = '{0}/v{1}/bin/windows/amd64/{2}' -f $BinariesBaseUrl, $KubernetesVersion, $binary
            Get-VerifiedFile -Url $url -Path (Join-Path $KDir $binary)
        }
    }

    Invoke-Step 'cni-plugins' {
        $archive = Join-Path $env:TEMP 'cni-plugins.archive'
        Invoke-WebRequest -UseBasicParsing -Uri $CniPluginsUrl -OutFile $archive
        if ($CniPluginsUrl.EndsWith('.zip')) {
            Move-Item -Force -Path $archive -Destination ($archive + '.zip')
            Expand-Archive -Path ($archive + '.zip') -DestinationPath $CniBin -Force
        } else {
            Invoke-Native 'tar.exe' @('-xzf', $archive, '-C', $CniBin)
        }
        if ($FlannelCniUrl) {
            # flannel's CNI plugin ships as flannel-amd64.exe
            # (flannel-io/cni-plugin scripts/package.sh).
            $archive = Join-Path $env:TEMP 'flannel-cni.tgz'
            Invoke-WebRequest -UseBasicParsing -Uri $FlannelCniUrl -OutFile $archive
            Invoke-Native 'tar.exe' @('-xzf', $archive, '-C', $CniBin)
            Move-Item -Force -Path (Join-Path $CniBin 'flannel-amd64.exe') -Destination (Join-Path $CniBin 'flannel.exe')
        }
        if ($FlanneldUrl) {
            Invoke-WebRequest -UseBasicParsing -Uri $FlanneldUrl -OutFile (Join-Path $KDir 'flanneld.exe')
        }
    }

    Invoke-Step 'firewall' {
        New-NetFirewallRule -Name 'hke-kubelet' -DisplayName 'kubelet (hke)' -Direction Inbound -Protocol TCP -LocalPort 10250 -Action Allow | Out-Null
        if ($Overlay) {
            New-NetFirewallRule -Name 'hke-vxlan' -DisplayName 'VXLAN overlay (hke)' -Direction Inbound -Protocol UDP -LocalPort 4789 -Action Allow | Out-Null
        }
    }

    Invoke-Step 'pause-image' {
        $ctr = Join-Path $ContainerdDir 'ctr.exe'
        $present = & $ctr -n k8s.io images ls -q | Select-String -SimpleMatch $PauseImage
        if ($AlwaysPullPause -or -not $present) {
            Invoke-Native $ctr @('-n', 'k8s.io', 'images', 'pull', '--platform', $PausePlatform, $PauseImage)
        }
    }

    Invoke-Step 'kubelet-service' {
        # kubeadm join starts the service named kubelet once it has written
        # the kubelet's config.yaml (join phase kubelet-start).
        $arguments = @(('-log-file=' + (Join-Path $LogDir 'kubelet.log')), (Join-Path $KDir 'kubelet.exe')) + ($KubeletArgs -replace '__HKE_NODE_NAME__', $NodeName)
        $quoted = $arguments | ForEach-Object { '"' + $_ + '"' }
        New-Service -Name 'kubelet' -BinaryPathName ('"' + (Join-Path $KDir 'kube-log-runner.exe') + '" ' + ($quoted -join ' ')) -DependsOn 'containerd' -StartupType Automatic | Out-Null
        Invoke-Native 'sc.exe' @('failure', 'kubelet', 'reset=', '86400', 'actions=', 'restart/10000/restart/10000/restart/10000')
    }

    Invoke-Step 'kubeadm-join' {
        $kubeadm = Join-Path $KDir 'kubeadm.exe'
        $joined = $false
        for ($attempt = 1; $attempt -le 30 -and -not $joined; $attempt++) {
            & $kubeadm join ('{0}:{1}' -f $ApiServer, $ApiServerPort) --token $Token --discovery-token-ca-cert-hash $CaCertHash --node-name $NodeName --cri-socket $CriSocket
            if ($LASTEXITCODE -eq 0) {
                $joined = $true
            } else {
                # What a failed join left behind fails the next preflight.
                Write-Log ('join attempt ' + $attempt + ' failed; resetting and retrying in 10s')
                & $kubeadm reset -f --cri-socket $CriSocket
                Start-Sleep -Seconds 10
            }
        }
        if (-not $joined) {
            throw 'kubeadm join did not succeed'
        }
    }

    if ($NetworkPlugin -eq 'kubenet') {
        Invoke-Step 'hns-network' {
            # The first master gives this node its pod range (the range its
            # cloud route points at); wait for it.
            $kubectl = Join-Path $KDir 'kubectl.exe'
            $podCidr = ''
            for ($i = 0; $i -lt 360 -and -not $podCidr; $i++) {
                $podCidr = & $kubectl --kubeconfig 'C:\etc\kubernetes\kubelet.conf' get node $NodeName -o 'jsonpath={.spec.podCIDR}'
                if (-not $podCidr) {
                    Start-Sleep -Seconds 10
                }
            }
            if (-not $podCidr) {
                throw 'the node never got a pod CIDR'
            }
            # .1 is the bridge's gateway, .2 the host's endpoint on it (cbr0),
            # pods start at .3 (kube-up cluster/gce/windows k8s-node-setup.psm1).
            $gateway = Get-AddressInRange -Cidr $podCidr -Offset 1
            $hostEndpoint = Get-AddressInRange -Cidr $podCidr -Offset 2
            $rangeStart = Get-AddressInRange -Cidr $podCidr -Offset 3
            # A first L2Bridge network creates the vSwitch (and its blip) once;
            # the pod network then comes and goes without taking the host's
            # connectivity with it.
            if (-not (Get-HnsNetwork | Where-Object { $_.Name -eq 'External' })) {
                New-HkeHnsNetwork -Name 'External' -Type 'L2Bridge' -AddressPrefix '192.168.255.0/30' -Gateway '192.168.255.1' | Out-Null
                Start-Sleep -Seconds 10
            }
            Restore-MetadataRoute
            $network = Get-HnsNetwork | Where-Object { $_.Name -eq $HnsNetworkName }
            if (-not $network) {
                $network = New-HkeHnsNetwork -Name $HnsNetworkName -Type 'L2Bridge' -AddressPrefix $podCidr -Gateway $gateway
            }
            if (-not (Get-HnsEndpoint | Where-Object { $_.Name -eq 'cbr0' })) {
                $endpoint = Invoke-Hns -Method 'POST' -Path '/endpoints/' -Body @{ Name = 'cbr0'; VirtualNetwork = $network.ID; IPAddress = $hostEndpoint; GatewayAddress = '0.0.0.0' }
                Invoke-Hns -Method 'POST' -Path ('/endpoints/' + $endpoint.ID + '/attach') -Body @{ SystemType = 'Host'; CompartmentId = 1 } | Out-Null
                Invoke-Native 'netsh.exe' @('interface', 'ipv4', 'set', 'interface', 'vEthernet (cbr0)', 'forwarding=enabled')
            }
            $management = Get-NetAdapter | Where-Object { $_.Name -like 'vEthernet (Ethernet*' } | Select-Object -First 1
            if ($management -and -not (Get-NetRoute -DestinationPrefix $podCidr -InterfaceIndex $management.ifIndex -ErrorAction SilentlyContinue)) {
                New-NetRoute -InterfaceIndex $management.ifIndex -DestinationPrefix $podCidr -NextHop '0.0.0.0' | Out-Null
            }
            $conf = Join-Path $CniConf $CniFileName
            $text = (Get-Content -Raw -Path $conf) -replace '__HKE_POD_CIDR__', $podCidr -replace '__HKE_POD_RANGE_START__', $rangeStart -replace '__HKE_NODE_IP__', (Get-NodeAddress)
            Set-Content -Path $conf -Value $text -Encoding ASCII
            Restore-MetadataRoute
        }
    }

    if ($NetworkPlugin -eq 'flannel') {
        Invoke-Step 'flanneld' {
            # flanneld has no Windows image and is not a service binary: a
            # startup task keeps it running. It makes the flannel.4096 HNS
            # network and writes the node's lease to C:\run\flannel\subnet.env.
            $flanneld = Join-Path $KDir 'flanneld.exe'
            $flanneldLog = Join-Path $LogDir 'flanneld.log'
            $arguments = ($FlanneldArgs -replace '__HKE_NODE_IP__', (Get-NodeAddress)) | ForEach-Object { "'" + ($_ -replace "'", "''") + "'" }
            $runner = Join-Path $KDir 'hke-flanneld.ps1'
            $lines = @(
                ("`$env:NODE_NAME = '" + ($NodeName -replace "'", "''") + "'"),
                'while ($true) {',
                ("    & '" + $flanneld + "' " + ($arguments -join ' ') + " *>> '" + $flanneldLog + "'"),
                '    Start-Sleep -Seconds 5',
                '}'
            )
            Set-Content -Path $runner -Encoding UTF8 -Value $lines
            $action = New-ScheduledTaskAction -Execute 'powershell.exe' -Argument ('-NoProfile -ExecutionPolicy Bypass -File "' + $runner + '"')
            $trigger = New-ScheduledTaskTrigger -AtStartup
            $settings = New-ScheduledTaskSettingsSet -ExecutionTimeLimit ([TimeSpan]::Zero) -RestartCount 999 -RestartInterval (New-TimeSpan -Minutes 1)
            Register-ScheduledTask -TaskName 'hke-flanneld' -Action $action -Trigger $trigger -Settings $settings -User 'SYSTEM' -RunLevel Highest -Force | Out-Null
            Start-ScheduledTask -TaskName 'hke-flanneld'
        }
        Invoke-Step 'source-vip' {
            # kube-proxy needs an address of the node's overlay subnet for
            # the traffic it sends (--source-vip); host-local reserves it in
            # the store the pods' IPAM uses, so no pod gets it.
            $subnetFile = 'C:\run\flannel\subnet.env'
            for ($i = 0; $i -lt 120 -and -not ((Test-Path $subnetFile) -and (Get-HnsNetwork | Where-Object { $_.Name -eq $HnsNetworkName })); $i++) {
                Start-Sleep -Seconds 5
            }
            if (-not (Test-Path $subnetFile)) {
                throw 'flanneld never wrote its lease (C:\run\flannel\subnet.env)'
            }
            Restore-MetadataRoute
            $lease = ((Get-Content -Path $subnetFile) | Where-Object { $_ -like 'FLANNEL_SUBNET=*' }) -replace '^FLANNEL_SUBNET=', ''
            $subnet = (Get-AddressInRange -Cidr $lease -Offset 0) + '/' + ($lease -split '/')[1]
            $ipam = @{ cniVersion = '0.3.1'; name = $HnsNetworkName; ipam = @{ type = 'host-local'; ranges = @(, @(@{ subnet = $subnet })); dataDir = 'C:\var\lib\cni\networks' } } | ConvertTo-Json -Depth 6 -Compress
            $env:CNI_COMMAND = 'ADD'
            $env:CNI_CONTAINERID = 'kube-proxy'
            $env:CNI_NETNS = 'kube-proxy'
            $env:CNI_IFNAME = 'source-vip'
            $env:CNI_PATH = $CniBin
            $result = $ipam | & (Join-Path $CniBin 'host-local.exe') | ConvertFrom-Json
            $vip = ($result.ips[0].address -split '/')[0]
            if (-not $vip) {
                throw 'host-local returned no source VIP'
            }
            Set-Content -Path (Join-Path $StateDir 'source-vip') -Value $vip
            Write-Log ('kube-proxy source VIP ' + $vip)
        }
    }

    Invoke-Step 'kube-proxy-service' {
        # kube-proxy in kernelspace mode on the plugin's HNS network, as a
        # service (kube-up's Windows nodes), with its own client certificate.
        for ($i = 0; $i -lt 120 -and -not (Get-HnsNetwork | Where-Object { $_.Name -eq $HnsNetworkName }); $i++) {
            Start-Sleep -Seconds 5
        }
        $vipFile = Join-Path $StateDir 'source-vip'
        $vip = ''
        if (Test-Path $vipFile) {
            $vip = (Get-Content -Path $vipFile).Trim()
        }
        $proxyArgs = $KubeProxyArgs -replace '__HKE_NODE_NAME__', $NodeName -replace '__HKE_SOURCE_VIP__', $vip
        $arguments = @(('-log-file=' + (Join-Path $LogDir 'kube-proxy.log')), (Join-Path $KDir 'kube-proxy.exe')) + $proxyArgs
        $quoted = $arguments | ForEach-Object { '"' + $_ + '"' }
        New-Service -Name 'kube-proxy' -BinaryPathName ('"' + (Join-Path $KDir 'kube-log-runner.exe') + '" ' + ($quoted -join ' ')) -DependsOn 'kubelet' -StartupType Automatic | Out-Null
        Invoke-Native 'sc.exe' @('failure', 'kube-proxy', 'reset=', '86400', 'actions=', 'restart/10000/restart/10000/restart/10000')
        Start-Service kube-proxy
    }

    Restore-MetadataRoute

    Unregister-ScheduledTask -TaskName 'hke-bootstrap' -Confirm:$false -ErrorAction SilentlyContinue
    Write-Log 'node bootstrap complete'
    Invoke-Diagnostics
    exit 0
} catch {
    Write-Log ('FAILED: ' + $_.Exception.Message + ' ' + $_.InvocationInfo.PositionMessage)
    Invoke-Diagnostics
    exit 1
}
