# artcloak installer for Windows: finds a Python (one PyTorch has builds for, 3.12 or 3.10-3.14, first)
# and runs install.py with your arguments; install.py says clearly when it cannot have PyTorch.
#   powershell -ExecutionPolicy Bypass -File install_scripts\install.ps1              install or update
#   powershell -ExecutionPolicy Bypass -File install_scripts\install.ps1 --check      list what is installed, then test the engine
#   powershell -ExecutionPolicy Bypass -File install_scripts\install.ps1 --uninstall  remove it again
# Set $env:ARTCLOAK_PYTHON to a python.exe to choose the Python.
$ErrorActionPreference = 'Stop'
$here = Split-Path -Parent $MyInvocation.MyCommand.Path
$installer = Join-Path $here 'install.py'
$candidates = @()
if ($env:ARTCLOAK_PYTHON) { $candidates += , @($env:ARTCLOAK_PYTHON) }
foreach ($v in '3.12', '3.13', '3.11', '3.10', '3.14') { $candidates += , @('py', "-$v") }
$candidates += , @('py', '-3')
$candidates += , @('python')
$candidates += , @('python3')
foreach ($c in $candidates) {
    $exe = $c[0]
    $pre = @($c | Select-Object -Skip 1)
    if (-not (Get-Command $exe -ErrorAction SilentlyContinue)) { continue }
    # the Microsoft Store's "python" alias fails this check instead of opening the Store here
    $ErrorActionPreference = 'Continue'
    & $exe @pre -c "import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 9))" 2>$null | Out-Null
    $ok = ($LASTEXITCODE -eq 0)
    $ErrorActionPreference = 'Stop'
    if ($ok) {
        & $exe @pre $installer @args
        exit $LASTEXITCODE
    }
}
Write-Host 'artcloak needs Python 3.10 to 3.14, and none was found.'
Write-Host 'Install it from https://www.python.org/downloads/ (tick "Add python.exe to PATH"),'
Write-Host 'or run:  winget install Python.Python.3.12   then open a new PowerShell and run this again.'
exit 1
