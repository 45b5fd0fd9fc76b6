# hke: bootstrap of Windows node 'aa91k8s01000' (pool 'windowspool1', Windows Server '2022').
# Delivered as user data. Every step is logged with a timestamp to
# C:\k\logs\hke-bootstrap.log and the serial console (COM1); the first failure
# stops the script with a non-zero exit code. The Containers feature needs a
# reboot: the script registers itself to run again at startup and skips the
# steps already done.
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'

$NodeName = 'aa91k8s01000'
if (-not $NodeName) {
    # An instance of a machine group: named after its host.
    $NodeName = $env:COMPUTERNAME.ToLowerInvariant()
}
$WindowsBuild = '10.0.20348'
$KubernetesVersion = '1.36.4'
$BinariesBaseUrl = 'https://dl.k8s.io'
$ContainerdVersion = '2.2.4'
$ContainerdUrl = 'https://github.com/containerd/containerd/releases/download/v2.2.4/containerd-2.2.4-windows-amd64.tar.gz'
$PauseImage = 'registry.k8s.io/pause:3.10.1'
$AlwaysPullPause = ('false' -eq 'true')
$NetworkPlugin = 'calico'
$Overlay = ('true' -eq 'true')
$HnsNetworkName = 'Calico'
$HnsNetworkType = 'Overlay'
$NodeLabels = 'agentpool=windowspool1,hke.io/pool=windowspool1,node.kubernetes.io/windows-build=10.0.20348'
$RegisterTaints = ''
$ApiServer = 'kubernetes-windows.westus2.cloudapp.azure.com'
$ApiServerPort = '6443'
$Token = '<token>'
$CaCertHash = '<ca-hash>'
$CniConfig = '{
  "cniVersion": "0.3.1",
  "name": "Calico",
  "type": "calico",
  "mode": "vxlan",
  "vxlan_vni": 4096,
  "capabilities": {
    "portMappings": true,
    "dns": true
  },
  "ipam": {
    "type": "calico-ipam",
    "subnet": "usePodCidr"
  },
  "dns": {
    "Nameservers": [
      "10.0.0.10"
    ],
    "Search": [
      "svc.cluster.local",
      "cluster.local"
    ]
  },
  "policies": [
    {
      "Name": "EndpointPolicy",
      "Value": {
        "Type": "OutBoundNAT",
        "ExceptionList": [
          "10.244.0.0/16",
          "10.0.0.0/16",
          "10.240.0.0/16"
        ]
      }
    },
    {
      "Name": "EndpointPolicy",
      "Value": {
        "Type": "ROUTE",
        "DestinationPrefix": "10.0.0.0/16",
        "NeedEncap": true
      }
    }
  ]
}'
$CniPluginsUrl = 'https://github.com/containernetworking/plugins/releases/download/v1.7.1/cni-plugins-windows-amd64-v1.7.1.tgz'
$SshEnabled = ('true' -eq 'true')
$HyperV = ('false' -eq 'true')
$KubeletArgs = @(
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
$SshKeys = @(
    '<ssh-public-key>'
)

$KDir = 'C:\k'
$LogDir = Join-Path $KDir 'logs'
$StateDir = Join-Path $KDir 'hke-state'
$LogFile = Join-Path $LogDir 'hke-bootstrap.log'
$Self = Join-Path $KDir 'hke-bootstrap.ps1'
$CniBin = 'C:\opt\cni\bin'
$CniConf = 'C:\etc\cni\net.d'
$ContainerdDir = Join-Path $env:ProgramFiles 'containerd'
New-Item -ItemType Directory -Force -Path $KDir, $LogDir, $StateDir, $CniBin, $CniConf | Out-Null

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
        $config = Join-Path $ContainerdDir 'config.toml'
        $default = & (Join-Path $ContainerdDir 'containerd.exe') config default
        $default = $default -replace "sandbox = '.*'", ("sandbox = '" + $PauseImage + "'")
        $default = $default -replace "bin_dirs = \[.*\]", ("bin_dirs = ['" + ($CniBin -replace '\\', '/') + "']")
        $default = $default -replace "conf_dir = '.*'", ("conf_dir = '" + ($CniConf -replace '\\', '/') + "'")
        if ($HyperV) {
            # Hyper-V isolated containers: the runtime handler the
            # windows-<version>-hyperv RuntimeClass names.
            $default += @(
                "[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runhcs-wcow-hypervisor]",
                "  runtime_type = 'io.containerd.runhcs.v1'",
                "  [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runhcs-wcow-hypervisor.options]",
                '    SandboxIsolation = 1'
            )
        }
        Set-Content -Path $config -Value $default
        Invoke-Native (Join-Path $ContainerdDir 'containerd.exe') @('--register-service')
        Start-Service containerd
    }

    Invoke-Step 'kubernetes-binaries' {
        foreach ($binary in @('kubelet.exe', 'kubeadm.exe', 'kube-proxy.exe', 'kubectl.exe')) {
            $url = '{0}/v{1}/bin/windows/amd64/{2}' -f $BinariesBaseUrl, $KubernetesVersion, $binary
            Get-VerifiedFile -Url $url -Path (Join-Path $KDir $binary)
        }
    }

    Invoke-Step 'cni-plugins' {
        $archive = Join-Path $env:TEMP 'cni-plugins.tgz'
        Invoke-WebRequest -UseBasicParsing -Uri $CniPluginsUrl -OutFile $archive
        Invoke-Native 'tar.exe' @('-xzf', $archive, '-C', $CniBin)
        Set-Content -Path (Join-Path $CniConf '10-hke.conf') -Value $CniConfig
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
            Invoke-Native $ctr @('-n', 'k8s.io', 'images', 'pull', '--platform', ('windows/amd64:' + $WindowsBuild), $PauseImage)
        }
    }

    Invoke-Step 'kubelet-service' {
        $kubelet = Join-Path $KDir 'kubelet.exe'
        $arguments = @(
            '--windows-service',
            '--config=C:\var\lib\kubelet\config.yaml',
            '--bootstrap-kubeconfig=C:\etc\kubernetes\bootstrap-kubelet.conf',
            '--kubeconfig=C:\etc\kubernetes\kubelet.conf',
            '--container-runtime-endpoint=npipe:////./pipe/containerd-containerd',
            ('--hostname-override=' + $NodeName),
            ('--node-labels=' + $NodeLabels)
        ) + $KubeletArgs
        if ($RegisterTaints) {
            $arguments += ('--register-with-taints=' + $RegisterTaints)
        }
        $quoted = $arguments | ForEach-Object { '"' + $_ + '"' }
        New-Service -Name 'kubelet' -BinaryPathName ('"' + $kubelet + '" ' + ($quoted -join ' ')) -DependsOn 'containerd' -StartupType Automatic | Out-Null
        Invoke-Native 'sc.exe' @('failure', 'kubelet', 'reset=', '86400', 'actions=', 'restart/10000/restart/10000/restart/10000')
    }

    Invoke-Step 'kubeadm-join' {
        Invoke-Native (Join-Path $KDir 'kubeadm.exe') @(
            'join', ('{0}:{1}' -f $ApiServer, $ApiServerPort),
            '--token', $Token,
            '--discovery-token-ca-cert-hash', $CaCertHash,
            '--node-name', $NodeName,
            '--cri-socket', 'npipe:////./pipe/containerd-containerd'
        )
    }

    Invoke-Step 'hns-network' {
        if ($NetworkPlugin -eq 'kubenet') {
            # The control plane assigns the node's pod range; wait for it.
            $kubectl = Join-Path $KDir 'kubectl.exe'
            $podCidr = ''
            for ($i = 0; $i -lt 60 -and -not $podCidr; $i++) {
                $podCidr = & $kubectl --kubeconfig 'C:\etc\kubernetes\kubelet.conf' get node $NodeName -o 'jsonpath={.spec.podCIDR}'
                if (-not $podCidr) {
                    Start-Sleep -Seconds 10
                }
            }
            if (-not $podCidr) {
                throw 'the node never got a pod CIDR'
            }
            $conf = Join-Path $CniConf '10-hke.conf'
            Set-Content -Path $conf -Value ((Get-Content -Raw -Path $conf) -replace '__HKE_POD_CIDR__', $podCidr)
            $gateway = ($podCidr -replace '\.0/\d+$', '.1')
            New-HnsNetwork -Type $HnsNetworkType -Name $HnsNetworkName -AddressPrefix $podCidr -Gateway $gateway | Out-Null
        }
        Restore-MetadataRoute
    }

    Unregister-ScheduledTask -TaskName 'hke-bootstrap' -Confirm:$false -ErrorAction SilentlyContinue
    Write-Log 'node bootstrap complete'
    Invoke-Diagnostics
    exit 0
} catch {
    Write-Log ('FAILED: ' + $_.Exception.Message + ' ' + $_.InvocationInfo.PositionMessage)
    Invoke-Diagnostics
    exit 1
}
